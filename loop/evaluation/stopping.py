"""When to stop labeling: what the last labels bought, and whether the predictions settled.

Two signals for model owners, both read from the versions the scoreboard scored on the same
test set (:mod:`loop.evaluation.scoreboard`):

- **the gain of the last labels**: the macro-F1 difference between the newest version and the
  newest one trained on at least ``last`` fewer labels, with its paired bootstrap interval. An
  interval that straddles zero says these labels bought nothing the test set can see;
- **stabilizing predictions** (Bloodgood and Vijay-Shanker, 2009), small-text's
  ``KappaAverage``: Cohen's kappa between the predictions of consecutive versions on a fixed
  sample of the stream (the test documents' texts; their labels are not used). When the mean
  kappa of the last ``window`` pairs reaches ``kappa``, new labels no longer change what the
  model says, and labeling can stop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel

from loop.classification.evaluation import Prediction
from loop.evaluation.base import MetricDelta
from loop.evaluation.curves import evaluations
from loop.evaluation.deltas import compare
from loop.registry import ModelRegistry


class Stopping(BaseModel):
    """The stopping signal of a task."""

    versions: list[str]
    """The versions it was computed on, oldest first (all scored on the same test set)."""
    test_size: int
    gain_base: str | None = None
    gain_labels: int | None = None
    """How many more labels the newest version trained on than ``gain_base``."""
    gain: MetricDelta | None = None
    kappa: list[float]
    """Cohen's kappa between consecutive versions' predictions: the last ``kappa_window``
    pairs (what the criterion reads), oldest first."""
    kappa_threshold: float
    kappa_window: int
    stop: bool
    """Whether the kappa criterion says to stop."""
    advice: str


def _answers(rows: Sequence[dict[str, Any]]) -> dict[str, str]:
    return {str(r["id"]): str(r["predicted"]) for r in rows}


def stopping(
    scored: Sequence[tuple[str, int, Sequence[dict[str, Any]]]],
    labels: Sequence[str],
    *,
    last: int = 100,
    kappa: float = 0.99,
    window: int = 3,
    confidence: float = 0.9,
) -> Stopping:
    """The signal from ``scored``: (version, labels trained on, predictions on the current
    test set) of every single-label version, oldest first."""
    from small_text.stopping_criteria import KappaAverage

    versions = [v for v, _, _ in scored]
    ids = (
        sorted(set.intersection(*(set(_answers(rows)) for _, _, rows in scored))) if scored else []
    )
    index = {name: i for i, name in enumerate(labels)}
    criterion = KappaAverage(len(labels), window_size=window, kappa=kappa)
    stop = False
    for _, _, rows in scored:
        said = _answers(rows)
        if any(said[i] not in index for i in ids):
            continue  # a version with labels the task does not have: not comparable
        stop = bool(criterion.stop(predictions=np.array([index[said[i]] for i in ids])))
    history = [round(float(k), 4) for k in criterion.kappa_history]
    result = Stopping(
        versions=versions,
        test_size=len(ids),
        kappa=history,
        kappa_threshold=kappa,
        kappa_window=window,
        stop=stop,
        advice="",
    )
    if len(scored) >= 2:
        head_version, head_labels, head_rows = scored[-1]
        earlier = [s for s in scored[:-1] if s[1] <= head_labels - last] or [scored[0]]
        base_version, base_labels, base_rows = earlier[-1]
        delta = compare(
            [Prediction.model_validate(r) for r in base_rows],
            [Prediction.model_validate(r) for r in head_rows],
            labels,
            base_version=base_version,
            head_version=head_version,
            confidence=confidence,
        )
        result.gain_base, result.gain_labels, result.gain = (
            base_version,
            head_labels - base_labels,
            delta.macro_f1,
        )
    result.advice = advice(result)
    return result


def advice(signal: Stopping) -> str:
    """One sentence a model owner can act on."""
    if signal.gain is None:
        return "too few versions yet: at least two scored on the same test set are needed"
    gain = signal.gain
    bought = f"the last {signal.gain_labels} labels ({signal.gain_base} to {signal.versions[-1]}) "
    interval = f"{gain.delta:+.3f} [{gain.ci_low:+.3f}, {gain.ci_high:+.3f}]"
    if signal.stop:
        return (
            f"stop: predictions have settled (mean kappa of the last {signal.kappa_window} "
            f"pairs >= {signal.kappa_threshold}); {bought}changed macro-F1 by {interval}"
        )
    if gain.ci_low > 0:
        return f"keep labeling: {bought}raised macro-F1 by {interval}"
    return (
        f"labels are buying little: {bought}changed macro-F1 by {interval}, an interval that "
        "includes zero; the predictions have not settled yet"
    )


def from_registry(registry: ModelRegistry, **options: Any) -> Stopping:
    """The signal of a classifier registry's versions on its newest test set."""
    scored = []
    labels: list[str] = []
    for version, trained_on, evaluation in evaluations(registry):
        metrics = registry.card(version).metrics or {}
        scored.append((version, trained_on, metrics.get("predictions") or []))
        labels += [name for name in getattr(evaluation, "labels", []) if name not in labels]
    return stopping(scored, labels, **options)
