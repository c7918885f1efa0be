"""Evaluation of an entity extractor on the frozen test set, and deltas between versions.

The same shapes as classification (:mod:`loop.classification.evaluation`, :mod:`loop.evaluation.deltas`), so the API
and the promotion gate serve both: per type (strict span matching: same offsets and type)
precision, recall, F1, TP, FP, FN and support; micro and macro averages; the type-confusion
matrix; and, reported apart, the recall on test spans whose surface form never appeared in
training, which is what routing unseen entities to people exists to raise.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

from loop.entities.base import surface_form
from loop.evaluation.base import Averages, LabelMetrics, MetricDelta
from loop.evaluation.bootstrap import metric_delta, weights
from loop.messages import EntityMention

NONE = "none"
"""The confusion matrix's row and column for "no span here"."""


class EntityPrediction(BaseModel):
    """One test document: its gold spans and the spans a version predicted."""

    id: str
    gold: list[EntityMention]
    predicted: list[EntityMention]
    origin: str | None = None


class UnseenRecall(BaseModel):
    """Recall on gold spans whose surface form is not in the training data."""

    recall: float
    support: int


class EntityEvaluation(BaseModel):
    """A version's entity scores on the frozen test set."""

    version: str | None = None
    task: str = "entities"
    types: list[str]
    per_type: dict[str, LabelMetrics]
    micro: Averages
    macro: Averages
    type_confusion: list[list[int]] = Field(
        description="rows: gold type, columns: predicted type, over type_confusion_labels"
    )
    type_confusion_labels: list[str]
    unseen_recall: float
    unseen_support: int
    unseen_per_type: dict[str, UnseenRecall]
    test_size: int
    test_origins: dict[str, int]
    train_size: int | None = None
    primary: str = "macro_f1"
    higher_is_better: bool = True

    @property
    def macro_f1(self) -> float:
        return self.macro.f1

    @property
    def per_label(self) -> Mapping[str, LabelMetrics]:
        """The per-type scores under the name the promotion gate reads."""
        return self.per_type

    def metric(self, name: str, label: str | None = None) -> float:
        """``macro_f1``, ``micro_f1``, ``unseen_recall``, or ``f1`` / ``precision`` /
        ``recall`` of the type ``label``."""
        if label is not None:
            return float(getattr(self.per_type[label], name))
        if name == "unseen_recall":
            return self.unseen_recall
        scope, _, measure = name.partition("_")
        return float(getattr(getattr(self, scope), measure))


Key = tuple[int, int, str]


def _keys(spans: Sequence[EntityMention]) -> set[Key]:
    return {(m.start, m.end, m.label) for m in spans}


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else 0.0


def _scores(tp: int, fp: int, fn: int) -> LabelMetrics:
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return LabelMetrics(
        precision=round(precision, 4),
        recall=round(recall, 4),
        f1=round(f1, 4),
        tp=tp,
        fp=fp,
        fn=fn,
        support=tp + fn,
    )


def counts(rows: Sequence[EntityPrediction], types: Sequence[str]) -> npt.NDArray[np.int64]:
    """Per document and type: [tp, fp, fn] (shape documents x types x 3), strict matching."""
    index = {t: i for i, t in enumerate(types)}
    table = np.zeros((len(rows), len(types), 3), dtype=np.int64)
    for d, row in enumerate(rows):
        gold, said = _keys(row.gold), _keys(row.predicted)
        for key in gold | said:
            t = index.get(key[2])
            if t is None:
                continue
            table[d, t, 0 if key in gold and key in said else 2 if key in gold else 1] += 1
    return table


def _unseen(
    rows: Sequence[EntityPrediction], seen: set[str]
) -> tuple[npt.NDArray[np.int64], list[tuple[str, bool]]]:
    """Per document [found, total] over unseen gold spans, and (type, found) of each."""
    table = np.zeros((len(rows), 2), dtype=np.int64)
    each: list[tuple[str, bool]] = []
    for d, row in enumerate(rows):
        said = _keys(row.predicted)
        for m in row.gold:
            if surface_form(m.text) in seen:
                continue
            found = (m.start, m.end, m.label) in said
            table[d] += (int(found), 1)
            each.append((m.label, found))
    return table, each


def _averages(table: npt.NDArray[np.int64]) -> tuple[Averages, Averages]:
    """Micro and macro averages from per-type [tp, fp, fn] totals (rounded once, at the end);
    the macro average is over the types that occur in the test set or in the predictions."""

    def exact(tp: float, fp: float, fn: float) -> tuple[float, float, float]:
        precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        return precision, recall, _ratio(2 * precision * recall, precision + recall)

    micro = exact(*(float(v) for v in table.sum(axis=0)))
    # Types the test set never shows (no gold span, none predicted) say nothing either way.
    rows = [exact(*(float(v) for v in row)) for row in table if row.sum() > 0] or [(0.0,) * 3]
    macro = [sum(values) / len(rows) for values in zip(*rows, strict=True)]

    def averages(values: Sequence[float]) -> Averages:
        return Averages(
            precision=round(values[0], 4), recall=round(values[1], 4), f1=round(values[2], 4)
        )

    return averages(micro), averages(macro)


def type_confusion(rows: Sequence[EntityPrediction], types: Sequence[str]) -> list[list[int]]:
    """Gold type against predicted type for spans at the same offsets, over ``types`` plus
    ``none``: a missed gold span counts in the ``none`` column, a spurious one in the ``none``
    row."""
    labels = [*types, NONE]
    index = {t: i for i, t in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for row in rows:
        gold = {(m.start, m.end): m.label for m in row.gold}
        said = {(m.start, m.end): m.label for m in row.predicted}
        for offsets in gold.keys() | said.keys():
            g = index.get(gold.get(offsets, NONE), index[NONE])
            p = index.get(said.get(offsets, NONE), index[NONE])
            matrix[g][p] += 1
    return matrix


def evaluate_entities(
    rows: Sequence[EntityPrediction],
    types: Sequence[str],
    seen_forms: Collection[str] = (),
    version: str | None = None,
) -> EntityEvaluation:
    """Score a version's predictions on the test documents; ``seen_forms`` are the surface
    forms (see :func:`~loop.entities.base.surface_form`) of its training spans."""
    types = list(types)
    table = counts(rows, types).sum(axis=0)
    micro, macro = _averages(table)
    seen = {surface_form(f) for f in seen_forms}
    unseen_table, each = _unseen(rows, seen)
    found, total = (int(v) for v in unseen_table.sum(axis=0))
    unseen_per_type = {}
    for t in types:
        hits = [ok for label, ok in each if label == t]
        unseen_per_type[t] = UnseenRecall(
            recall=round(_ratio(sum(hits), len(hits)), 4), support=len(hits)
        )
    origins = Counter(row.origin or "unknown" for row in rows)
    return EntityEvaluation(
        version=version,
        types=types,
        per_type={t: _scores(*(int(v) for v in table[i])) for i, t in enumerate(types)},
        micro=micro,
        macro=macro,
        type_confusion=type_confusion(rows, types),
        type_confusion_labels=[*types, NONE],
        unseen_recall=round(_ratio(found, total), 4),
        unseen_support=total,
        unseen_per_type=unseen_per_type,
        test_size=len(rows),
        test_origins=dict(sorted(origins.items())),
    )


class EntitySpanFlip(BaseModel):
    """A test document whose predicted spans became right (fixed) or wrong (broken)."""

    id: str
    gold: list[EntityMention]
    base: list[EntityMention]
    head: list[EntityMention]
    text: str | None = None
    """The document's text, when the API found it in the label store."""


class EntityDelta(BaseModel):
    """What changed between two entity versions on the test documents both were scored on."""

    task: str = "entities"
    base: str
    head: str
    common_test_size: int
    confidence: float
    micro_f1: MetricDelta
    macro_f1: MetricDelta
    unseen_recall: MetricDelta
    per_type: list[MetricDelta]
    fixed: list[EntitySpanFlip]
    broken: list[EntitySpanFlip]


def _f1(table: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """F1 from [..., 3] arrays of tp, fp, fn (0 where there is nothing)."""
    tp, fp, fn = table[..., 0], table[..., 1], table[..., 2]
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros(tp.shape), where=denominator > 0)


def compare_entities(
    base: Sequence[EntityPrediction],
    head: Sequence[EntityPrediction],
    types: Sequence[str],
    *,
    base_version: str,
    head_version: str,
    seen_forms: Collection[str] = (),
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> EntityDelta:
    """Per-type F1, micro-F1, macro-F1 and unseen-recall deltas (head minus base) with paired
    bootstrap intervals over the documents both versions were scored on (gold from head), and
    the documents that flipped."""
    types = list(types)
    base_by_id = {row.id: row for row in base}
    heads = [row for row in head if row.id in base_by_id]
    bases = [base_by_id[row.id].model_copy(update={"gold": row.gold}) for row in heads]
    seen = {surface_form(f) for f in seen_forms}
    b_counts, h_counts = counts(bases, types), counts(heads, types)
    b_unseen, _ = _unseen(bases, seen)
    h_unseen, _ = _unseen(heads, seen)

    n = len(heads)
    rows = weights(n, resamples, seed)

    def statistics(
        table: npt.NDArray[np.int64], unseen: npt.NDArray[np.int64]
    ) -> dict[str, npt.NDArray[np.float64]]:
        """For the full set (row 0) and each resample: per-type F1, micro, macro, unseen."""
        totals = np.tensordot(rows, table, axes=(1, 0))  # rows x types x 3
        per_type = _f1(totals)
        micro_f1 = _f1(totals.sum(axis=1))
        found = rows @ unseen if n else np.zeros((len(rows), 2), dtype=np.int64)
        unseen_recall = np.divide(
            found[:, 0], found[:, 1], out=np.zeros(len(rows)), where=found[:, 1] > 0
        )
        present = totals.sum(axis=2) > 0  # types seen in each row's gold or predictions
        counted = present.sum(axis=1)
        macro = np.divide(
            (per_type * present).sum(axis=1), counted, out=np.zeros(len(rows)), where=counted > 0
        )
        return {"per_type": per_type, "micro": micro_f1, "macro": macro, "unseen": unseen_recall}

    b_stats, h_stats = statistics(b_counts, b_unseen), statistics(h_counts, h_unseen)

    def delta(name: str, key: str, column: int | None = None, support: int = n) -> MetricDelta:
        b, h = b_stats[key], h_stats[key]
        if column is not None:
            b, h = b[:, column], h[:, column]
        label = types[column] if column is not None else None
        return metric_delta(
            name, b, h, support=support, confidence=confidence, documents=n, label=label, digits=4
        )

    gold_support = h_counts[..., 0].sum(axis=0) + h_counts[..., 2].sum(axis=0)
    fixed: list[EntitySpanFlip] = []
    broken: list[EntitySpanFlip] = []
    for b_row, h_row in zip(bases, heads, strict=True):
        gold = _keys(h_row.gold)
        was, now = _keys(b_row.predicted) == gold, _keys(h_row.predicted) == gold
        if was != now:
            flip = EntitySpanFlip(
                id=h_row.id, gold=h_row.gold, base=b_row.predicted, head=h_row.predicted
            )
            (fixed if now else broken).append(flip)
    return EntityDelta(
        base=base_version,
        head=head_version,
        common_test_size=n,
        confidence=confidence,
        micro_f1=delta("micro_f1", "micro"),
        macro_f1=delta("macro_f1", "macro"),
        unseen_recall=delta("unseen_recall", "unseen", support=int(h_unseen[:, 1].sum())),
        per_type=[
            delta("f1", "per_type", i, support=int(gold_support[i])) for i in range(len(types))
        ],
        fixed=fixed,
        broken=broken,
    )
