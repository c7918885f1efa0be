"""The promotion gate: a new version replaces the promoted one only if it is not worse.

Both versions are scored on the same (current) test set. The new version passes when its
macro-F1 is at most ``max_macro_f1_drop`` below the promoted one's and no label's F1 falls by
more than ``max_label_f1_drop``. The first version passes when it has a test set at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


class _LabelScores(Protocol):
    @property
    def f1(self) -> float: ...

    @property
    def support(self) -> int: ...


class Scored(Protocol):
    """What the gate reads from an evaluation (classification or entities)."""

    @property
    def test_size(self) -> int: ...

    @property
    def macro_f1(self) -> float: ...

    @property
    def per_label(self) -> Mapping[str, _LabelScores]: ...


@dataclass(frozen=True)
class Gate:
    """Promotion thresholds (absolute F1 points, 0 to 1)."""

    max_macro_f1_drop: float = 0.0
    """How much lower the new macro-F1 may be than the promoted one's."""
    max_label_f1_drop: float = 0.1
    """How much any single label's F1 may drop."""
    min_test_size: int = 1
    """Test documents needed before any promotion."""


@dataclass
class Verdict:
    passed: bool
    reasons: list[str] = field(default_factory=list)


def judge(head: Scored, base: Scored | None, gate: Gate) -> Verdict:
    """Whether ``head`` may replace ``base`` (None: nothing is promoted yet), and why."""
    if head.test_size < gate.min_test_size:
        return Verdict(
            False, [f"the test set has {head.test_size} document(s), below {gate.min_test_size}"]
        )
    if base is None:
        return Verdict(True, ["no version is promoted yet"])
    reasons = []
    drop = base.macro_f1 - head.macro_f1
    if drop > gate.max_macro_f1_drop + 1e-9:
        reasons.append(
            f"macro-F1 {head.macro_f1:.3f} is {drop:.3f} below the promoted {base.macro_f1:.3f} "
            f"(at most {gate.max_macro_f1_drop:.3f} allowed)"
        )
    for label, metrics in base.per_label.items():
        if metrics.support == 0 or label not in head.per_label:
            continue
        fall = metrics.f1 - head.per_label[label].f1
        if fall > gate.max_label_f1_drop + 1e-9:
            reasons.append(
                f"label {label!r}: F1 {head.per_label[label].f1:.3f} fell by {fall:.3f} "
                f"(at most {gate.max_label_f1_drop:.3f} allowed)"
            )
    if reasons:
        return Verdict(False, reasons)
    return Verdict(True, [f"macro-F1 {head.macro_f1:.3f} against the promoted {base.macro_f1:.3f}"])
