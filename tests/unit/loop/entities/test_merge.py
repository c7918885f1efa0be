"""The merge rule: what is served when a model and the patterns both answer."""

from __future__ import annotations

from loop.entities.base import GAZETTEER, MODEL, PATTERN, Span
from loop.entities.merge import MergeRule, merge

TEXT = "USDJPY rallies as $AAPL soars after earnings beat; ETH flat"


def span(surface: str, label: str, score: float, source: str = "") -> Span:
    start = TEXT.index(surface)
    return Span(start, start + len(surface), label, surface, score, source)


def served(spans: list[Span]) -> list[tuple[str, str, float, str]]:
    return [(s.text, s.label, s.score, s.source) for s in spans]


PATTERNS = [
    span("USDJPY", "FOREX", 0.9, GAZETTEER),
    span("$AAPL", "STOCK", 0.95, PATTERN),
    span("ETH", "CRYPTO", 0.85, GAZETTEER),
]


def test_the_demo_sentence_keeps_the_known_pair_the_cashtag_and_the_coin() -> None:
    # The undertrained tagger of the demo: USDJPY as a stock, $AAPL (widened), no ETH.
    model = [span("USDJPY", "STOCK", 0.62), span("$AAPL", "STOCK", 0.71)]
    assert served(merge(model, PATTERNS)) == [
        ("USDJPY", "FOREX", 0.9, GAZETTEER),
        ("$AAPL", "STOCK", 0.71, MODEL),  # it agrees with the cashtag match: the model's
        ("ETH", "CRYPTO", 0.85, GAZETTEER),
    ]


def test_a_model_span_that_agrees_with_a_match_is_served_as_the_model_s() -> None:
    model = [span("USDJPY", "FOREX", 0.55), span("ETH", "CRYPTO", 0.99)]
    assert served(merge(model, PATTERNS)) == [
        ("USDJPY", "FOREX", 0.55, MODEL),
        ("$AAPL", "STOCK", 0.95, PATTERN),
        ("ETH", "CRYPTO", 0.99, MODEL),
    ]


def test_a_gazetteer_match_wins_over_any_overlapping_model_span() -> None:
    model = [span("USDJPY", "STOCK", 0.99), span("USDJPY rallies", "FOREX", 0.97)]
    for one in model:
        assert served(merge([one], PATTERNS[:1])) == [("USDJPY", "FOREX", 0.9, GAZETTEER)]


def test_a_regex_match_loses_only_to_a_more_confident_model_span() -> None:
    cashtag = [PATTERNS[1]]
    surer = span("$AAPL", "CRYPTO", 0.97)
    assert served(merge([surer], cashtag)) == [("$AAPL", "CRYPTO", 0.97, MODEL)]
    for score in (0.95, 0.6):  # a tie goes to the match
        weaker = span("$AAPL soars", "STOCK", score)  # other boundaries: no agreement
        assert served(merge([weaker], cashtag)) == [("$AAPL", "STOCK", 0.95, PATTERN)]


def test_model_spans_that_overlap_nothing_are_kept() -> None:
    model = [span("earnings", "STOCK", 0.55), span("ETH flat", "CRYPTO", 0.8)]
    assert served(merge(model, PATTERNS)) == [
        ("USDJPY", "FOREX", 0.9, GAZETTEER),
        ("$AAPL", "STOCK", 0.95, PATTERN),
        ("earnings", "STOCK", 0.55, MODEL),
        ("ETH", "CRYPTO", 0.85, GAZETTEER),
    ]


def test_off_serves_the_model_alone() -> None:
    model = [span("USDJPY", "STOCK", 0.62)]
    assert served(merge(model, PATTERNS, MergeRule.OFF)) == [("USDJPY", "STOCK", 0.62, MODEL)]
    assert merge([], PATTERNS, MergeRule.OFF) == []


def test_spans_keep_a_source_they_have_and_unmarked_matches_are_regex_only() -> None:
    # The patterns can serve as a registered version: their spans say what they are.
    as_version = [span("ETH", "CRYPTO", 0.85, GAZETTEER)]
    unmarked = [span("$AAPL", "STOCK", 0.95)]
    assert served(merge(as_version, unmarked)) == [
        ("$AAPL", "STOCK", 0.95, PATTERN),
        ("ETH", "CRYPTO", 0.85, GAZETTEER),
    ]
