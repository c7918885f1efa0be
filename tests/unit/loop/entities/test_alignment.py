"""Whole tokens: what a token is, and spans widened to them (the spaCy extractor's too)."""

from __future__ import annotations

import pytest

from loop.entities.alignment import Tokens, align
from loop.entities.base import ExtractorConfig, Span, make_span
from loop.entities.spacy_ner import SpacyExtractor


def words(text: str) -> list[str]:
    found = Tokens.of(text)
    return [
        text[s:e] for s, e, word in zip(found.starts, found.ends, found.words, strict=True) if word
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("USDJPY rallies as $AAPL soars", ["USDJPY", "rallies", "as", "$AAPL", "soars"]),
        ("EUR/USD, BTC-USD; $BRK.B and S&P.", ["EUR/USD", "BTC-USD", "$BRK.B", "and", "S&P"]),
        ("$AAPL's #bitcoin @elon (ETH)", ["$AAPL", "s", "bitcoin", "elon", "ETH"]),
        ("USD / JPY", ["USD", "JPY"]),
        ("Zürich 🚀 café\u0301 naïve", ["Zürich", "café\u0301", "naïve"]),
        ("$$ETH $ 5", ["$ETH", "5"]),
    ],
)
def test_words_are_runs_of_word_characters_joined_by_ticker_connectors(
    text: str, expected: list[str]
) -> None:
    assert words(text) == expected


def test_every_non_space_character_is_in_exactly_one_token() -> None:
    text = "$AAPL's (EUR/USD) 🚀🚀 ok."
    found = Tokens.of(text)
    covered = [i for s, e in zip(found.starts, found.ends, strict=True) for i in range(s, e)]
    assert covered == [i for i, c in enumerate(text) if not c.isspace()]


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (18, 21, "$AAPL"),  # "$AA"
        (19, 23, "$AAPL"),  # "AAPL" without its cashtag sign
        (3, 6, "USDJPY"),  # "JPY"
        (45, 50, "beat"),  # "beat;"
        (44, 50, "beat"),  # " beat;"
        (30, 49, "after earnings beat"),
    ],
)
def test_cover_widens_to_whole_words_and_trims_punctuation(
    start: int, end: int, expected: str
) -> None:
    text = "USDJPY rallies as $AAPL soars after earnings beat; ETH flat"
    covered = Tokens.of(text).cover(start, end)
    assert covered is not None
    assert text[covered[0] : covered[1]] == expected


def test_a_span_of_punctuation_alone_covers_nothing() -> None:
    assert Tokens.of("up 🚀 ; now").cover(3, 6) is None


def test_align_keeps_the_best_of_spans_that_become_the_same() -> None:
    text = "buy $AAPL now"
    spans = [Span(5, 9, "STOCK", "AAPL", 0.6), Span(4, 7, "STOCK", "$AA", 0.8)]
    assert align(text, spans) == [Span(4, 9, "STOCK", "$AAPL", 0.8)]


def test_spacy_spans_are_widened_to_whole_tokens() -> None:
    # spaCy's English tokenizer splits "$AAPL" into "$" and "AAPL", "BTC-USD" into three.
    text = "$AAPL and BTC-USD up"
    extractor = SpacyExtractor(None, ["CRYPTO", "STOCK"], ExtractorConfig())
    beam = [
        make_span(text, 1, 5, "STOCK", 0.9),  # AAPL
        make_span(text, 0, 1, "STOCK", 0.3),  # $
        make_span(text, 10, 13, "CRYPTO", 0.7),  # BTC
    ]
    extractor.scored_spans = lambda texts, batch_size=32: [beam]  # type: ignore[method-assign]
    ((spans, misses),) = extractor.analyse([text])
    assert [(s.text, s.label, s.score) for s in spans] == [
        ("$AAPL", "STOCK", 0.9),
        ("BTC-USD", "CRYPTO", 0.7),
    ]
    assert misses == [], "the weaker '$' became '$AAPL' too: a duplicate, not a near miss"
