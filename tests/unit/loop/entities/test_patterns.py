from __future__ import annotations

from pathlib import Path

import pytest

from loop.entities.factories import factory_for
from loop.entities.patterns import PatternExtractor


def found(text: str) -> list[tuple[str, str]]:
    [spans] = PatternExtractor().predict([text])
    assert all(text[s.start : s.end] == s.text for s in spans)
    return [(s.text, s.label) for s in spans]


@pytest.mark.parametrize("pair", ["USDJPY", "USD/JPY", "usd-jpy", "usdjpy", "EUR_USD", "GBP / CHF"])
def test_currency_pairs_in_common_spellings(pair: str) -> None:
    assert found(f"{pair} broke out") == [(pair, "FOREX")]
    assert found(f"watching {pair}") == [(pair, "FOREX")]


def test_cashtags_split_into_stocks_coins_and_pairs() -> None:
    text = "$AAPL and $BRK.B up, $BTC down, $EURUSD flat"
    assert found(text) == [
        ("$AAPL", "STOCK"),
        ("$BRK.B", "STOCK"),
        ("$BTC", "CRYPTO"),
        ("$EURUSD", "FOREX"),
    ]


def test_crypto_names_and_symbols() -> None:
    assert found("Bitcoin, ETH and dogecoin rallied") == [
        ("Bitcoin", "CRYPTO"),
        ("ETH", "CRYPTO"),
        ("dogecoin", "CRYPTO"),
    ]


def test_ordinary_words_and_non_currencies_are_not_tagged() -> None:
    assert found("I will try to link the dot com, pay $100, usd/usd, XYZ/ABC, password") == []


def test_ambiguous_lowercase_symbols_are_near_misses_not_tags() -> None:
    extractor = PatternExtractor()
    assert extractor.predict(["buying some eth"]) == [[]]
    [[miss]] = extractor.near_misses(["buying some eth"])
    assert (miss.text, miss.label) == ("eth", "CRYPTO")
    assert miss.score < extractor.threshold


def test_unicode_text_and_edges_keep_exact_offsets() -> None:
    text = "USD/JPY fällt 😀 während €-Anleger $AAPL"
    [spans] = PatternExtractor().predict([text])
    assert [(s.start, s.end) for s in spans] == [(0, 7), (len(text) - 5, len(text))]


def test_save_and_load_give_the_same_predictions(tmp_path: Path) -> None:
    extractor = PatternExtractor()
    extractor.save(tmp_path / "model")
    loaded = factory_for("patterns").load(tmp_path / "model")
    texts = ["USDJPY and $AAPL", "eth, Bitcoin and usd-jpy"]
    assert loaded.predict(texts) == extractor.predict(texts)
    assert loaded.near_misses(texts) == extractor.near_misses(texts)
