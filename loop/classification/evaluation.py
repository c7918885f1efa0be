"""Evaluation that model owners can act on: per-label metrics, confusion, deltas, curves.

Every version is scored on the frozen test set (see :mod:`loop.training.split`), and its predictions
on each test document are kept, so two versions can be compared document by document: which
labels got better (with a bootstrap confidence interval) and which documents flipped from right
to wrong or back. The primary metric is macro-F1, higher is better.

A multi-label version is scored label by label (a label a document has and the version gave is
a true positive of that label, and so on); its accuracy is the share of documents whose whole
label set was right, and it has no confusion matrix (one document can hold several labels).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field

from loop.evaluation.base import Averages, LabelMetrics

PRIMARY = "macro_f1"


class Prediction(BaseModel):
    """One test document: its gold label, what the version said, and how it was selected.
    Multi-label: the gold label set and the predicted one (sorted lists)."""

    id: str
    gold: str | list[str]
    predicted: str | list[str]
    origin: str | None = None

    @property
    def multi_label(self) -> bool:
        return isinstance(self.gold, list)


class Evaluation(BaseModel):
    """A version's scores on a test set. ``primary`` names the metric gates and curves use."""

    version: str | None = None
    labels: list[str]
    per_label: dict[str, LabelMetrics]
    micro: Averages
    macro: Averages
    accuracy: float
    confusion: list[list[int]] = Field(
        description="rows: gold label, columns: predicted (empty for a multi-label version)"
    )
    confusion_normalised: list[list[float]] = Field(description="each row sums to 1 (recall)")
    multi_label: bool = False
    test_size: int
    test_origins: dict[str, int] = Field(
        description="test labels by how their document was selected: random, uncertain, ..."
    )
    train_size: int | None = None
    primary: str = PRIMARY
    higher_is_better: bool = True

    @property
    def macro_f1(self) -> float:
        return self.macro.f1

    def metric(self, name: str, label: str | None = None) -> float:
        """``macro_f1``, ``micro_f1``, ``accuracy``, or ``f1`` / ``precision`` / ``recall`` of
        ``label``."""
        if label is not None:
            return float(getattr(self.per_label[label], name))
        if name == "accuracy":
            return self.accuracy
        scope, _, measure = name.partition("_")
        return float(getattr(getattr(self, scope), measure))


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else 0.0


def _f1(precision: float, recall: float) -> float:
    return _ratio(2 * precision * recall, precision + recall)


def confusion_matrix(
    gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]
) -> np.ndarray:
    """Counts of (gold, predicted) pairs; labels outside ``labels`` are ignored."""
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for g, p in zip(gold, predicted, strict=True):
        if g in index and p in index:
            matrix[index[g], index[p]] += 1
    return matrix


def _macro_f1(matrix: np.ndarray) -> float:
    tp = np.diag(matrix).astype(float)
    predicted = matrix.sum(axis=0)
    actual = matrix.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    present = actual > 0
    return float(f1[present].mean()) if present.any() else 0.0


def _label_metrics(tp: int, fp: int, fn: int) -> LabelMetrics:
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return LabelMetrics(
        precision=round(precision, 6),
        recall=round(recall, 6),
        f1=round(_f1(precision, recall), 6),
        tp=tp,
        fp=fp,
        fn=fn,
        support=tp + fn,
    )


def _averages(per_label: dict[str, LabelMetrics]) -> tuple[Averages, Averages]:
    """Micro and macro averages; macro over the labels with test support."""
    present = [m for m in per_label.values() if m.support > 0]
    tp_all = sum(m.tp for m in per_label.values())
    fp_all = sum(m.fp for m in per_label.values())
    fn_all = sum(m.fn for m in per_label.values())
    micro_p, micro_r = _ratio(tp_all, tp_all + fp_all), _ratio(tp_all, tp_all + fn_all)
    micro = Averages(
        precision=round(micro_p, 6), recall=round(micro_r, 6), f1=round(_f1(micro_p, micro_r), 6)
    )
    macro = Averages(
        precision=round(float(np.mean([m.precision for m in present])) if present else 0.0, 6),
        recall=round(float(np.mean([m.recall for m in present])) if present else 0.0, 6),
        f1=round(float(np.mean([m.f1 for m in present])) if present else 0.0, 6),
    )
    return micro, macro


def _origins(predictions: Sequence[Prediction]) -> dict[str, int]:
    origins: dict[str, int] = {}
    for p in predictions:
        key = p.origin or "unknown"
        origins[key] = origins.get(key, 0) + 1
    return dict(sorted(origins.items()))


def _evaluation(
    predictions: Sequence[Prediction],
    version: str | None,
    labels: list[str],
    per_label: dict[str, LabelMetrics],
    right: int,
    *,
    confusion: list[list[int]] | None = None,
    normalised: list[list[float]] | None = None,
    multi_label: bool = False,
) -> Evaluation:
    """The evaluation of ``predictions`` from its per-label metrics and the number of
    documents the version got wholly ``right``."""
    micro, macro = _averages(per_label)
    return Evaluation(
        version=version,
        labels=labels,
        per_label=per_label,
        micro=micro,
        macro=macro,
        accuracy=round(_ratio(right, len(predictions)), 6),
        confusion=confusion or [],
        confusion_normalised=normalised or [],
        test_size=len(predictions),
        test_origins=_origins(predictions),
        multi_label=multi_label,
    )


def evaluate_sets(
    predictions: Sequence[Prediction], labels: Sequence[str], version: str | None = None
) -> Evaluation:
    """Score multi-label predictions (label sets) label by label; see the module's text."""
    names = list(labels)
    for p in predictions:
        names += [n for n in (*p.gold, *p.predicted) if n not in names]
    per_label = {name: [0, 0, 0] for name in names}  # tp, fp, fn
    exact = 0
    for p in predictions:
        gold, said = set(p.gold), set(p.predicted)
        exact += gold == said
        for name in gold & said:
            per_label[name][0] += 1
        for name in said - gold:
            per_label[name][1] += 1
        for name in gold - said:
            per_label[name][2] += 1
    metrics = {name: _label_metrics(*counts) for name, counts in per_label.items()}
    return _evaluation(predictions, version, names, metrics, exact, multi_label=True)


def evaluate(
    predictions: Sequence[Prediction],
    labels: Sequence[str],
    version: str | None = None,
    *,
    multi_label: bool | None = None,
) -> Evaluation:
    """Score predictions against their gold labels.

    Macro averages run over the labels that occur in the test set (a label with no test
    document has no recall to average); ``per_label`` still lists every label. Label-set
    predictions (or ``multi_label=True``) are scored by :func:`evaluate_sets`.
    """
    if multi_label is None:
        multi_label = any(p.multi_label for p in predictions)
    if multi_label:
        return evaluate_sets(predictions, labels, version)
    labels = list(labels)
    for p in predictions:
        for name in (str(p.gold), str(p.predicted)):
            if name not in labels:
                labels.append(name)
    gold = [str(p.gold) for p in predictions]
    said = [str(p.predicted) for p in predictions]
    matrix = confusion_matrix(gold, said, labels)
    per_label: dict[str, LabelMetrics] = {}
    for i, label in enumerate(labels):
        tp = int(matrix[i, i])
        per_label[label] = _label_metrics(
            tp, int(matrix[:, i].sum()) - tp, int(matrix[i, :].sum()) - tp
        )
    row_sums = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, row_sums, out=np.zeros(matrix.shape), where=row_sums > 0)
    right = sum(m.tp for m in per_label.values())
    return _evaluation(
        predictions,
        version,
        labels,
        per_label,
        right,
        confusion=matrix.tolist(),
        normalised=np.round(normalised, 4).tolist(),
    )
