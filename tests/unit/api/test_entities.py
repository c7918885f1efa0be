"""POST /v1/entities and /v1/predict: patterns before any version, then the promoted one."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from loop.entities.base import Example, ExtractorConfig, make_span
from loop.registry import ModelRegistry
from loop.settings import ApiSettings, EntitySettings, Settings
from loop.testing.extractor import GazetteerFactory
from tests.unit.api.conftest import KEY

TEXT = "Zürich 🚀 buys AUDJPY"


def make_client(registry: ModelRegistry, **entities: object) -> TestClient:
    settings = Settings(
        home=registry.root.parent / "home",
        registry_dir=registry.root,
        api=ApiSettings(keys=[SecretStr(KEY)], reload_check_s=3600),
        entities=EntitySettings(**entities),  # type: ignore[arg-type]
    )
    return TestClient(create_app(settings), headers={"X-API-Key": KEY})


def test_the_patterns_answer_before_any_entity_version(registry: ModelRegistry) -> None:
    with make_client(registry, enabled=True) as client:
        answer = client.post("/v1/entities", json={"id": "t1", "text": TEXT})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["entity_version"] == "patterns"
    (entity,) = body["results"][0]["entities"]
    assert (entity["label"], entity["text"], entity["source"]) == ("FOREX", "AUDJPY", "gazetteer")
    assert TEXT[entity["start"] : entity["end"]] == "AUDJPY"


def test_without_patterns_or_a_version_the_answer_is_503(registry: ModelRegistry) -> None:
    with make_client(registry) as client:
        answer = client.post("/v1/entities", json={"text": TEXT})
        empty = client.post("/v1/entities", json={"text": "  "})
    assert answer.status_code == 503 and answer.json()["error"] == "no_entity_model"
    assert empty.status_code == 422


def promote_city_tagger(registry: ModelRegistry) -> str:
    """Promote an entity version that knows one city; return the text it was taught."""
    entity_registry = ModelRegistry(registry.root / "entities")
    text = "Zürich desk buys crash"
    example = Example(text, (make_span(text, 0, 6, "CITY"),))
    extractor = GazetteerFactory().train([example], ExtractorConfig())
    card = entity_registry.publish(
        extractor.save, labels=["CITY"], task="entities", kind="gazetteer"
    )
    entity_registry.promote(card.version)
    return text


def found(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(e["label"], e["text"], e["source"]) for e in result["entities"]]


def test_the_promoted_entity_version_answers_beside_the_patterns_and_predict_adds_the_classes(
    registry: ModelRegistry,
) -> None:
    text = promote_city_tagger(registry)
    with make_client(registry, enabled=True) as client:
        entities = client.post("/v1/entities", json={"text": TEXT}).json()
        both = client.post(
            "/v1/predict", json={"documents": [{"id": "a", "text": text + " on USDJPY"}]}
        )
    assert entities["entity_version"] == "v0001"
    # The version knows no currency pair; the gazetteer's match is served beside its city.
    assert found(entities["results"][0]) == [
        ("CITY", "Zürich", "model"),
        ("FOREX", "AUDJPY", "gazetteer"),
    ]
    assert both.status_code == 200, both.text
    body = both.json()
    assert (body["model_version"], body["entity_version"]) == ("v0001", "v0001")
    (result,) = body["results"]
    assert result["id"] == "a" and result["label"] == "Bearish"
    assert found(result) == [("CITY", "Zürich", "model"), ("FOREX", "USDJPY", "gazetteer")]


def test_with_the_merge_off_the_promoted_version_answers_alone(registry: ModelRegistry) -> None:
    promote_city_tagger(registry)
    with make_client(registry, enabled=True, merge="off") as client:
        entities = client.post("/v1/entities", json={"text": TEXT}).json()
    assert found(entities["results"][0]) == [("CITY", "Zürich", "model")]
