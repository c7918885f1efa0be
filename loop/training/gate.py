"""The promotion gate: a new version replaces what serves only on evidence that it is better.

Whatever serves is the baseline: the promoted version (the seed model included) or, for
entities before the first learned version, the patterns. Both are scored on the same frozen
test set (:mod:`loop.training.split`), and the gate reads the paired bootstrap of the difference
(:func:`loop.evaluation.deltas.compare`, :func:`loop.entities.evaluation.compare_entities`): the new
version passes when

- the test set has at least ``min_test_size`` documents (fewer decide nothing, whatever the
  scores say);
- its primary metric (the evaluation's ``primary``, macro-F1 for both tasks) is above the baseline's, and the lower end of the interval of
  the difference is above ``-tolerance``;
- no label (entity type) with at least ``min_label_support`` test documents falls by more
  than ``max_label_f1_drop`` with an interval entirely below zero (on fewer documents a label's
  F1 moves by chance: with 77 labels and 500 test documents, some label always seems to fall).

Only when nothing serves at all does the first version pass on the size of the test set alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from loop.evaluation.base import MetricDelta, display_name


@dataclass(frozen=True)
class Gate:
    """Promotion thresholds (absolute F1 points, 0 to 1)."""

    tolerance: float = 0.02
    """How far below zero the lower end of the macro-F1 delta's interval may reach."""
    max_label_f1_drop: float = 0.1
    """How much one label's F1 may fall (when its interval lies below zero, too)."""
    min_test_size: int = 30
    """Test documents needed before any promotion."""
    confidence: float = 0.9
    """Of the bootstrap interval the gate reads."""
    min_label_support: int = 10
    """Test documents a label needs before its own F1 can block a promotion."""


@dataclass
class Verdict:
    passed: bool
    reasons: list[str] = field(default_factory=list)


def too_small(test_size: int, gate: Gate) -> str | None:
    """Why a test set of ``test_size`` documents decides nothing, or None when it may."""
    if test_size >= gate.min_test_size:
        return None
    return (
        f"the test set has {test_size} document(s), too few to decide anything (at least "
        f"{gate.min_test_size}: label more of the evaluation sample, or give an evaluation file)"
    )


def judge(
    test_size: int,
    baseline: str | None,
    macro: MetricDelta | None,
    per_label: Sequence[MetricDelta],
    gate: Gate,
) -> Verdict:
    """Whether the new version may replace ``baseline`` (None: nothing serves), from the
    delta of the new version against it on the test set: ``macro``, the task's primary metric
    (:func:`loop.evaluation.base.primary_delta`, positive when better), and ``per_label``."""
    small = too_small(test_size, gate)
    if small is not None:
        return Verdict(False, [small])
    if baseline is None or macro is None:
        return Verdict(True, [f"nothing serves yet; scored on {test_size} test documents"])
    reasons = []
    name = display_name(macro.name)
    interval = f"{macro.delta:+.3f} [{macro.ci_low:+.3f}, {macro.ci_high:+.3f}]"
    if macro.delta <= 0:
        reasons.append(
            f"{name} {macro.head:.3f} is not above the {macro.base:.3f} of {baseline} ({interval})"
        )
    elif macro.ci_low < -gate.tolerance - 1e-9:
        reasons.append(
            f"{name} {interval} against {baseline}: the interval reaches below "
            f"-{gate.tolerance:.3f}, not enough evidence on {test_size} test documents"
        )
    for metric in per_label:
        if metric.support < max(gate.min_label_support, 1):
            continue
        if metric.delta < -gate.max_label_f1_drop - 1e-9 and metric.ci_high < 0:
            reasons.append(
                f"label {metric.label!r}: F1 {metric.head:.3f} fell by {-metric.delta:.3f} "
                f"from {metric.base:.3f} (at most {gate.max_label_f1_drop:.3f} allowed)"
            )
    if reasons:
        return Verdict(False, reasons)
    return Verdict(True, [f"{name} {interval} against {baseline} on {test_size} test documents"])
