"""Improvement curves: each metric against the number of labels, across all versions.

Every version a training round registered carries its evaluation; a curve is one point per
such version, at the number of labels it trained on. Versions were scored on the test set as
it was when they were trained (the test set only grows), which the points say (``test_size``).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel

from loop.entities.evaluation import EntityEvaluation
from loop.errors import AlloopError, InputError
from loop.evaluation import Evaluation
from loop.registry import ModelRegistry

OVERALL = ("macro_f1", "micro_f1", "accuracy")
ENTITY_OVERALL = ("macro_f1", "micro_f1", "unseen_recall")
PER_LABEL = ("f1", "precision", "recall")


class CurvePoint(BaseModel):
    version: str
    labels: int
    test_size: int
    value: float
    promoted: bool


class Curve(BaseModel):
    metric: str
    label: str | None = None
    points: list[CurvePoint]


def evaluations(
    registry: ModelRegistry,
) -> list[tuple[str, int, Evaluation | EntityEvaluation]]:
    """(version, training labels, evaluation) of every evaluated version, oldest first; the
    entity registry's versions carry entity evaluations."""
    found = []
    for version in registry.versions():
        try:
            card = registry.card(version)
        except AlloopError:
            continue
        raw = (card.metrics or {}).get("evaluation")
        if raw is None:
            continue
        evaluation: Evaluation | EntityEvaluation = (
            EntityEvaluation.model_validate(raw)
            if raw.get("task") == "entities"
            else Evaluation.model_validate(raw)
        )
        found.append((version, int(card.counts.get("train", 0)), evaluation))
    return found


def curves(
    registry: ModelRegistry, metrics: Sequence[str] = OVERALL, label: str | None = None
) -> list[Curve]:
    """One curve per metric: overall metrics, or with ``label`` that label's metrics."""
    promotion = registry.promotion()
    promoted_ever = set(promotion.history) | ({promotion.version} if promotion.version else set())
    points = evaluations(registry)
    entities = any(isinstance(e, EntityEvaluation) for _, _, e in points)
    result = []
    for metric in metrics:
        known = PER_LABEL if label is not None else ENTITY_OVERALL if entities else OVERALL
        if metric not in known:
            raise InputError(f"unknown metric {metric!r}; choose from {', '.join(known)}")
        series = []
        for version, labels, evaluation in points:
            if label is not None and label not in evaluation.per_label:
                continue
            series.append(
                CurvePoint(
                    version=version,
                    labels=labels,
                    test_size=evaluation.test_size,
                    value=evaluation.metric(metric, label),
                    promoted=version in promoted_ever,
                )
            )
        result.append(Curve(metric=metric, label=label, points=series))
    return result


def render(curves_: Sequence[Curve], fmt: Literal["png", "svg"] = "png", title: str = "") -> bytes:
    """Draw the curves (metric against labels; promoted versions filled) as PNG or SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=110)
    try:
        for curve in curves_:
            xs = [p.labels for p in curve.points]
            ys = [p.value for p in curve.points]
            name = f"{curve.label}: {curve.metric}" if curve.label else curve.metric
            (line,) = axes.plot(xs, ys, marker="o", markerfacecolor="white", label=name)
            promoted = [p for p in curve.points if p.promoted]
            axes.scatter(
                [p.labels for p in promoted],
                [p.value for p in promoted],
                color=line.get_color(),
                zorder=3,
            )
            for p in curve.points:
                axes.annotate(
                    p.version,
                    (p.labels, p.value),
                    fontsize=7,
                    alpha=0.7,
                    textcoords="offset points",
                    xytext=(0, 6),
                    ha="center",
                )
        axes.set_xlabel("labels trained on")
        axes.set_ylabel("score on the frozen test set")
        axes.set_ylim(0, 1.02)
        axes.grid(alpha=0.3)
        axes.set_title(title or "improvement by version (filled: promoted)")
        if curves_:
            axes.legend(loc="lower right", fontsize=8)
        buffer = io.BytesIO()
        figure.tight_layout()
        figure.savefig(buffer, format=fmt)
        return buffer.getvalue()
    finally:
        plt.close(figure)
