"""The evaluation contract both tasks follow, and what the gate, the deltas and the curves read.

Every task's evaluation (:class:`loop.classification.evaluation.Evaluation`,
:class:`loop.entities.evaluation.EntityEvaluation`) names its ``primary`` metric and whether
higher is better; its delta between two versions holds a :class:`MetricDelta` under that name.
The gate (:mod:`loop.training.gate`) decides on :func:`primary_delta`, oriented so that a
positive difference always means "better", and never names a metric itself.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel


class LabelMetrics(BaseModel):
    """Precision, recall and F1 of one label, with the counts behind them."""

    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int
    support: int


class Averages(BaseModel):
    precision: float
    recall: float
    f1: float


class MetricDelta(BaseModel):
    """A metric in the base and the head version, their difference and its interval."""

    name: str
    label: str | None = None
    base: float
    head: float
    delta: float
    ci_low: float
    ci_high: float
    support: int

    @property
    def significant(self) -> bool:
        """Whether the interval excludes zero."""
        return self.ci_low > 0 or self.ci_high < 0

    def oriented(self, higher_is_better: bool) -> MetricDelta:
        """This delta with its sign turned so that a positive difference means better."""
        if higher_is_better:
            return self
        return self.model_copy(
            update={"delta": -self.delta, "ci_low": -self.ci_high, "ci_high": -self.ci_low}
        )


class Evaluated(Protocol):
    """What every evaluation offers the gate and the curves."""

    @property
    def primary(self) -> str:
        """The name of the metric that decides (``macro_f1``)."""

    @property
    def higher_is_better(self) -> bool: ...

    @property
    def test_size(self) -> int: ...


def primary_delta(delta: BaseModel, evaluated: Evaluated) -> MetricDelta:
    """The delta of ``evaluated``'s primary metric, oriented so that positive is better."""
    found = getattr(delta, evaluated.primary, None)
    if not isinstance(found, MetricDelta):
        raise ValueError(f"{type(delta).__name__} has no delta of {evaluated.primary!r}")
    return found.oriented(evaluated.higher_is_better)


METRIC_NAMES = {
    "macro_f1": "macro-F1",
    "micro_f1": "micro-F1",
    "accuracy": "accuracy",
    "unseen_recall": "unseen recall",
}


def display_name(metric: str) -> str:
    """How people read a metric's name: ``macro_f1`` is macro-F1."""
    return METRIC_NAMES.get(metric, metric)
