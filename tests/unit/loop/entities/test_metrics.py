from __future__ import annotations

from loop.entities.base import Span
from loop.entities.metrics import micro, span_counts, unseen_recall


def s(start: int, end: int, label: str, text: str = "x") -> Span:
    return Span(start, end, label, text)


def test_strict_matching_counts_boundary_and_type_errors_twice() -> None:
    gold = [[s(0, 6, "FOREX", "USDJPY"), s(10, 15, "STOCK", "$AAPL")]]
    predicted = [[s(0, 6, "STOCK", "USDJPY"), s(10, 15, "STOCK", "$AAPL")]]
    counts = span_counts(gold, predicted)
    assert (counts["FOREX"].tp, counts["FOREX"].fn) == (0, 1)
    assert (counts["STOCK"].tp, counts["STOCK"].fp) == (1, 1)
    total = micro(counts.values())
    assert (total.precision, total.recall) == (0.5, 0.5)


def test_unseen_recall_ignores_forms_seen_in_training() -> None:
    gold = [[s(0, 6, "FOREX", "USDJPY"), s(7, 13, "FOREX", "AUDJPY")]]
    predicted = [[s(0, 6, "FOREX", "USDJPY")]]
    assert unseen_recall(gold, predicted, {"usdjpy"}) == (0.0, 1)
