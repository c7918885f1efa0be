"""Strict span-level scores: a predicted span counts only if its offsets and type are exact.

Pure functions over spans, shared by benchmarks and evaluation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from loop.entities.base import Span


@dataclass(frozen=True)
class Counts:
    """True positives, false positives and false negatives of one type (or all)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def support(self) -> int:
        return self.tp + self.fn

    def as_dict(self) -> dict[str, float | int]:
        return {
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "support": self.support,
        }


def span_counts(
    gold: Sequence[Sequence[Span]], predicted: Sequence[Sequence[Span]]
) -> dict[str, Counts]:
    """Counts per type, strict matching, documents paired by position."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold documents but {len(predicted)} predicted")
    tally: dict[str, list[int]] = {}
    for gold_spans, predicted_spans in zip(gold, predicted, strict=True):
        gold_keys = {span.key for span in gold_spans}
        predicted_keys = {span.key for span in predicted_spans}
        for key in gold_keys | predicted_keys:
            row = tally.setdefault(key[2], [0, 0, 0])
            row[
                0 if key in gold_keys and key in predicted_keys else 2 if key in gold_keys else 1
            ] += 1
    return {label: Counts(*row) for label, row in sorted(tally.items())}


def micro(counts: Iterable[Counts]) -> Counts:
    """All types pooled."""
    rows = list(counts)
    return Counts(sum(c.tp for c in rows), sum(c.fp for c in rows), sum(c.fn for c in rows))


def unseen_recall(
    gold: Sequence[Sequence[Span]],
    predicted: Sequence[Sequence[Span]],
    seen_forms: set[str],
) -> tuple[float, int]:
    """Recall (strict) on gold spans whose case-folded text is not in ``seen_forms``, and how
    many such spans there are."""
    found = total = 0
    for gold_spans, predicted_spans in zip(gold, predicted, strict=True):
        predicted_keys = {span.key for span in predicted_spans}
        for span in gold_spans:
            if span.text.casefold() in seen_forms:
                continue
            total += 1
            found += span.key in predicted_keys
    return (found / total if total else 0.0), total
