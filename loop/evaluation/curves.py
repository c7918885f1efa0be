"""Improvement curves: each metric against the number of labels, across all versions.

A curve is one point per evaluated version (the seed model included, and for entities the
patterns that served before the first version, at 0 labels), at the number of labels it
trained on. Each round scores every version again on the current test set
(:mod:`loop.evaluation.scoreboard`), so the points stand on the same documents; a version that could not
be scored on it any more is left out rather than drawn on another test set.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel

from loop.classification.evaluation import Evaluation
from loop.entities.evaluation import EntityEvaluation
from loop.errors import AlloopError, InputError
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


def _evaluation(raw: dict[str, Any]) -> Evaluation | EntityEvaluation:
    if raw.get("task") == "entities":
        return EntityEvaluation.model_validate(raw)
    return Evaluation.model_validate(raw)


def evaluations(
    registry: ModelRegistry,
) -> list[tuple[str, int, Evaluation | EntityEvaluation]]:
    """(version, training labels, evaluation) of every version evaluated on the newest test
    set, oldest first, behind the baseline (the patterns) when the registry has one; the
    entity registry's versions carry entity evaluations."""
    found: list[tuple[str, int, str | None, Evaluation | EntityEvaluation]] = []
    baseline = registry.baseline()
    if baseline is not None and baseline.get("evaluation"):
        fingerprint = baseline.get("test_set", {}).get("fingerprint")
        found.append((str(baseline["name"]), 0, fingerprint, _evaluation(baseline["evaluation"])))
    for version in registry.versions():
        try:
            card = registry.card(version)
        except AlloopError:
            continue
        metrics = card.metrics or {}
        if metrics.get("evaluation") is None:
            continue
        fingerprint = metrics.get("test_set", {}).get("fingerprint")
        labels = int(card.counts.get("train", 0))
        found.append((version, labels, fingerprint, _evaluation(metrics["evaluation"])))
    if not found:
        return []
    newest = found[-1][2]
    return [(v, n, e) for v, n, fingerprint, e in found if fingerprint == newest]


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


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend: pictures are drawn to files or bytes, never to
    a display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def render(curves_: Sequence[Curve], fmt: Literal["png", "svg"] = "png", title: str = "") -> bytes:
    """Draw the curves (metric against labels; promoted versions filled) as PNG or SVG."""
    plt = pyplot()

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
        return figure_bytes(figure, fmt)
    finally:
        plt.close(figure)


def figure_bytes(figure: Any, fmt: Literal["png", "svg"]) -> bytes:
    """A matplotlib figure, laid out, as PNG or SVG bytes."""
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format=fmt)
    return buffer.getvalue()
