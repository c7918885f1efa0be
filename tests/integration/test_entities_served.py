"""What the API serves once a real, undertrained MiniLM tagger is promoted.

The demo's first entity round trained a tagger on a handful of tweets; on the sentence below it
served USDJPY as a stock, ``$AA`` cut out of ``$AAPL``, and no ETH, where the patterns alone
had found all three. Here a tagger trained on seven documents (no coin, no USDJPY, no AAPL
among them) is promoted, and the served tags must hold the three entities, on whole tokens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from loop.entities.base import Example, ExtractorConfig, Span
from loop.entities.transformer_tagger import TransformerTaggerFactory
from loop.registry import ModelRegistry
from loop.settings import ApiSettings, EntitySettings, Settings
from loop.testing.classifier import KeywordClassifier
from tests.unit.loop.entities.conftest import spans_of

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KEY = "integration-key"
SENTENCE = "USDJPY rallies as $AAPL soars after earnings beat; ETH flat"
TYPES = ("STOCK", "CRYPTO", "FOREX")


def example(text: str, *found: tuple[str, str]) -> Example:
    return Example(text, spans_of(text, *found))


SEVEN = [
    example("$TSLA jumps 5% after deliveries beat", ("$TSLA", "STOCK")),
    example("Shares of $MSFT slide as cloud growth slows", ("$MSFT", "STOCK")),
    example("$AMZN and $GOOGL lead the tech rally", ("$AMZN", "STOCK"), ("$GOOGL", "STOCK")),
    example("EURUSD slips below 1.08 on ECB comments", ("EURUSD", "FOREX")),
    example("Watching $NVDA into earnings", ("$NVDA", "STOCK")),
    example("Oil rises while GBPUSD holds steady", ("GBPUSD", "FOREX")),
    example("Markets close mixed on Friday"),
]


def whole_tokens(text: str, start: int, end: int) -> bool:
    """Starts after a space (or at the start) and ends before a space, ';' (or the end)."""
    return text[start - 1 : start] in ("", " ") and text[end : end + 1] in ("", " ", ";")


@pytest.fixture(scope="module")
def registries(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Span]]:
    """A registry with a keyword classifier, and an entity registry whose promoted version is
    the tagger trained on the seven documents; with what the tagger alone says."""
    root = tmp_path_factory.mktemp("served") / "registry"
    classifier = KeywordClassifier(["Bearish", "Bullish"], {"soars": {"Bullish": 8}})
    classes = ModelRegistry(root)
    classes.promote(
        classes.publish(classifier.save, labels=classifier.labels, kind="keywords").version
    )
    tagger = TransformerTaggerFactory().train(SEVEN, ExtractorConfig(types=TYPES))
    entities = ModelRegistry(root / "entities")
    card = entities.publish(
        tagger.save, labels=list(TYPES), task="entities", kind=TransformerTaggerFactory.name
    )
    entities.promote(card.version)
    (alone,) = tagger.predict([SENTENCE])
    return root, alone


def client(root: Path, **entities: Any) -> TestClient:
    settings = Settings(
        home=root.parent / "home",
        registry_dir=root,
        api=ApiSettings(keys=[SecretStr(KEY)], reload_check_s=3600),
        entities=EntitySettings(enabled=True, **entities),
    )
    return TestClient(create_app(settings), headers={"X-API-Key": KEY})


def served(result: dict[str, Any]) -> set[tuple[str, str, int, int]]:
    return {(e["label"], e["text"], e["start"], e["end"]) for e in result["entities"]}


def test_the_served_tags_keep_the_pair_the_cashtag_and_the_coin_on_whole_tokens(
    registries: tuple[Path, list[Span]],
) -> None:
    root, alone = registries
    # The tagger's own spans never cut a word, whatever it predicts.
    for span in alone:
        assert whole_tokens(SENTENCE, span.start, span.end), span
    with client(root) as api:
        entities = api.post("/v1/entities", json={"text": SENTENCE})
        both = api.post("/v1/predict", json={"text": SENTENCE})
    assert entities.status_code == 200, entities.text
    assert entities.json()["entity_version"] == "v0001"
    (result,) = entities.json()["results"]
    expected = {
        ("FOREX", "USDJPY", 0, 6),
        ("STOCK", "$AAPL", 18, 23),
        ("CRYPTO", "ETH", 51, 54),
    }
    assert expected <= served(result), (result, alone)
    for entity in result["entities"]:
        assert SENTENCE[entity["start"] : entity["end"]] == entity["text"]
        assert whole_tokens(SENTENCE, entity["start"], entity["end"]), entity
        assert entity["source"] in ("model", "gazetteer", "pattern")
    # Each says what found it: the tagger where it said the same, else the gazetteer.
    said = {(s.label, s.text, s.start, s.end) for s in alone}
    sources = {
        (e["label"], e["text"], e["start"], e["end"]): e["source"] for e in result["entities"]
    }
    for key in (("FOREX", "USDJPY", 0, 6), ("CRYPTO", "ETH", 51, 54)):
        assert sources[key] == ("model" if key in said else "gazetteer"), (key, alone)

    assert both.status_code == 200, both.text
    body = both.json()
    assert (body["model_version"], body["entity_version"]) == ("v0001", "v0001")
    assert body["results"][0]["entities"] == result["entities"]


def test_with_the_merge_off_the_tagger_answers_alone(registries: tuple[Path, list[Span]]) -> None:
    root, alone = registries
    with client(root, merge="off") as api:
        (result,) = api.post("/v1/entities", json={"text": SENTENCE}).json()["results"]
    assert [(e["label"], e["start"], e["end"]) for e in result["entities"]] == [
        (s.label, s.start, s.end) for s in alone
    ]
    assert all(e["source"] == "model" for e in result["entities"])
