"""Entity selection on crafted spans: each reason picks what it should."""

from __future__ import annotations

from loop.entities.base import Span
from loop.entities.selection import (
    EntityScored,
    EntitySelectionConfig,
    doubt,
    select_entities,
    suggestions,
)


def span(text: str, surface: str, label: str, score: float = 0.95) -> Span:
    start = text.index(surface)
    return Span(start, start + len(surface), label, surface, score)


def scored(doc_id: str, text: str, **found: list[tuple[str, str, float]]) -> EntityScored:
    kinds = {k: tuple(span(text, *row) for row in v) for k, v in found.items()}
    return EntityScored(doc_id, text, **kinds)


NO_RANDOM = EntitySelectionConfig(batch_size=3, random_fraction=0.0)


def test_a_pattern_hit_never_labelled_is_routed_as_unseen_once_per_form() -> None:
    known = scored("known", "USDJPY slips", matches=[("USDJPY", "FOREX", 0.9)])
    new_1 = scored("new-1", "AUDJPY jumps", matches=[("AUDJPY", "FOREX", 0.9)])
    new_2 = scored("new-2", "audjpy again, AUDJPY", matches=[("AUDJPY", "FOREX", 0.9)])
    picks = select_entities([known, new_1, new_2], NO_RANDOM, {"usdjpy"}, {"FOREX": 50})
    assert [(p.id, p.reason, p.unseen) for p in picks] == [("new-1", "unseen", ("audjpy",))]
    assert picks[0].suggestions[0].text == "AUDJPY", "the pattern span is pre-annotated"


def test_rare_types_come_before_doubt_and_confident_documents_are_left() -> None:
    rare = scored("rare", "Buy $XYZ now", spans=[("$XYZ", "STOCK", 0.97)])
    doubtful = scored("doubtful", "bitcoin rally", spans=[("bitcoin", "CRYPTO", 0.55)])
    sure = scored("sure", "Ethereum up", spans=[("Ethereum", "CRYPTO", 0.99)])
    seen = {"$xyz", "bitcoin", "ethereum"}
    picks = select_entities([sure, doubtful, rare], NO_RANDOM, seen, {"STOCK": 1, "CRYPTO": 40})
    assert [(p.id, p.reason) for p in picks] == [("rare", "rare"), ("doubtful", "uncertain")]
    assert picks[1].score == 0.45


def test_a_conflict_between_model_and_patterns_is_the_most_doubtful() -> None:
    conflict = scored(
        "conflict",
        "EURUSD flat",
        spans=[("EURUSD", "STOCK", 0.9)],
        matches=[("EURUSD", "FOREX", 0.9)],
    )
    near = scored("near", "maybe eth", near=[("eth", "CRYPTO", 0.3)])
    assert doubt(conflict, 0.8) == 1.0
    assert doubt(near, 0.8) == 0.3
    picks = select_entities(
        [near, conflict], NO_RANDOM, {"eurusd", "eth"}, {"FOREX": 9, "STOCK": 9, "CRYPTO": 9}
    )
    assert [p.id for p in picks] == ["conflict", "near"]
    # the pattern's span is suggested; the model's overlapping one is not added
    assert [s.label for s in suggestions(conflict)] == ["FOREX"]
    cut_short = scored(
        "cut", "AUDJPY up", spans=[("DJPY", "FOREX", 0.7)], matches=[("AUDJPY", "FOREX", 0.9)]
    )
    assert doubt(cut_short, 0.8) == 1.0, "other boundaries are a conflict too"
    assert [s.text for s in suggestions(cut_short)] == ["AUDJPY"]
    lower = scored("lower", "some sol", matches=[("sol", "CRYPTO", 0.3)])
    assert suggestions(lower) == (), "a weak pattern match is not suggested"


def test_the_random_slice_is_taken_first_and_the_batch_is_capped() -> None:
    items = [scored(f"d{i}", f"text {i} AUDJPY{i}") for i in range(20)]
    config = EntitySelectionConfig(batch_size=10, random_fraction=0.2, seed=3)
    picks = select_entities(items, config, set(), {})
    assert [p.reason for p in picks] == ["random", "random"], "nothing else is worth asking"
    assert len({p.id for p in picks}) == 2
