"""Entity evaluation and deltas on a hand-computed example."""

from __future__ import annotations

from loop.entities.evaluation import (
    EntityPrediction,
    compare_entities,
    evaluate_entities,
)
from loop.messages import EntityMention

TYPES = ["CRYPTO", "FOREX", "STOCK"]


def m(text: str, surface: str, label: str) -> EntityMention:
    start = text.index(surface)
    return EntityMention(label=label, start=start, end=start + len(surface), text=surface)


T1 = "AUDJPY up, $TSLA down"
T2 = "Bitcoin and USDJPY"
T3 = "quiet day"


def rows(head: bool = False) -> list[EntityPrediction]:
    """Base: AUDJPY tagged as a STOCK (the seed example of confusion), USDJPY missed, and a
    spurious CRYPTO in the quiet text. Head: AUDJPY right, the rest as in base."""
    return [
        EntityPrediction(
            id="d1",
            gold=[m(T1, "AUDJPY", "FOREX"), m(T1, "$TSLA", "STOCK")],
            predicted=[m(T1, "AUDJPY", "FOREX" if head else "STOCK"), m(T1, "$TSLA", "STOCK")],
            origin="unseen",
        ),
        EntityPrediction(
            id="d2",
            gold=[m(T2, "Bitcoin", "CRYPTO"), m(T2, "USDJPY", "FOREX")],
            predicted=[m(T2, "Bitcoin", "CRYPTO")],
            origin="random",
        ),
        EntityPrediction(id="d3", gold=[], predicted=[m(T3, "quiet", "CRYPTO")]),
    ]


def test_per_type_scores_confusion_and_unseen_recall_by_hand() -> None:
    ev = evaluate_entities(rows(), TYPES, seen_forms=["usdjpy", "$TSLA", "bitcoin"])
    # CRYPTO: Bitcoin tp, "quiet" fp. FOREX: AUDJPY fn, USDJPY fn. STOCK: $TSLA tp, AUDJPY fp.
    assert (ev.per_type["CRYPTO"].tp, ev.per_type["CRYPTO"].fp, ev.per_type["CRYPTO"].fn) == (
        1,
        1,
        0,
    )
    assert (ev.per_type["FOREX"].tp, ev.per_type["FOREX"].fn, ev.per_type["FOREX"].support) == (
        0,
        2,
        2,
    )
    assert (ev.per_type["STOCK"].tp, ev.per_type["STOCK"].fp) == (1, 1)
    assert ev.per_type["CRYPTO"].f1 == 0.6667 and ev.per_type["FOREX"].f1 == 0.0
    # micro: tp 2, fp 2, fn 2 -> P = R = F1 = 0.5; macro F1 = (2/3 + 0 + 2/3) / 3
    assert (ev.micro.precision, ev.micro.recall, ev.micro.f1) == (0.5, 0.5, 0.5)
    assert ev.macro.f1 == 0.4444 and ev.macro_f1 == 0.4444
    assert ev.type_confusion_labels == ["CRYPTO", "FOREX", "STOCK", "none"]
    assert ev.type_confusion == [
        [1, 0, 0, 0],  # Bitcoin right
        [0, 0, 1, 1],  # AUDJPY tagged STOCK, USDJPY missed
        [0, 0, 1, 0],  # $TSLA right
        [1, 0, 0, 0],  # "quiet" spurious CRYPTO
    ]
    # AUDJPY is the only gold form not seen in training, and it is not found
    assert (ev.unseen_recall, ev.unseen_support) == (0.0, 1)
    assert ev.unseen_per_type["FOREX"].support == 1
    assert ev.test_origins == {"random": 1, "unknown": 1, "unseen": 1}
    assert ev.metric("f1", "STOCK") == 0.6667 and ev.metric("micro_f1") == 0.5
    absent = evaluate_entities(rows(), [*TYPES, "PRODUCT"])
    assert absent.per_type["PRODUCT"].support == 0
    assert absent.macro.f1 == ev.macro.f1, "a type the test set never shows does not count"


def test_predictions_round_trip_through_json() -> None:
    row = rows()[0]
    assert EntityPrediction.model_validate(row.model_dump()) == row
    ev = evaluate_entities(rows(), TYPES)
    assert type(ev).model_validate(ev.model_dump()) == ev


def test_the_delta_shows_the_fixed_pair_and_identical_versions_show_nothing() -> None:
    delta = compare_entities(
        rows(), rows(head=True), TYPES, base_version="v1", head_version="v2", seen_forms=["usdjpy"]
    )
    forex = next(d for d in delta.per_type if d.label == "FOREX")
    # FOREX: base 0 of 2; head 1 tp, 1 fn -> F1 2/3
    assert (forex.base, forex.head, forex.delta, forex.support) == (0.0, 0.6667, 0.6667, 2)
    assert forex.ci_low <= forex.delta <= forex.ci_high
    stock = next(d for d in delta.per_type if d.label == "STOCK")
    assert (stock.base, stock.head) == (0.6667, 1.0)
    assert delta.unseen_recall.delta > 0  # AUDJPY (and $TSLA, Bitcoin) were unseen forms
    assert [f.id for f in delta.fixed] == ["d1"] and delta.broken == []
    assert delta.common_test_size == 3

    same = compare_entities(rows(), rows(), TYPES, base_version="v1", head_version="v1")
    assert all(d.delta == 0 and d.ci_low == d.ci_high == 0 for d in same.per_type)
    assert same.micro_f1.delta == 0 and same.fixed == same.broken == []
