from __future__ import annotations

from pathlib import Path

import pytest

from loop.entities.factories import factory_for
from loop.entities.patterns import Gazetteers, PatternExtractor


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


def test_matches_say_whether_they_come_from_a_gazetteer() -> None:
    text = "USD/JPY, $EURUSD, Bitcoin, ETH, $BTC, $AAPL and $MSFT"
    sources = {s.text: s.source for s in PatternExtractor().matches(text)}
    assert sources == {
        "USD/JPY": "gazetteer",
        "$EURUSD": "gazetteer",
        "Bitcoin": "gazetteer",
        "ETH": "gazetteer",
        "$BTC": "gazetteer",
        "$AAPL": "pattern",
        "$MSFT": "pattern",
    }
    listed = PatternExtractor(Gazetteers(stocks=frozenset({"AAPL"})))
    assert {s.text: s.source for s in listed.matches(text)}["$AAPL"] == "gazetteer"


def test_listed_stocks_round_trip_and_old_gazetteers_still_load() -> None:
    gazetteers = Gazetteers.from_dict({"stocks": ["aapl", "BRK.B"]})
    assert gazetteers.stocks == frozenset({"AAPL", "BRK.B"})
    assert Gazetteers.from_dict(gazetteers.to_dict()) == gazetteers
    assert Gazetteers.from_dict({"traded": ["USD", "JPY"]}).stocks == frozenset()
