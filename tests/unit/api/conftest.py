"""API test fixtures: a registry with two keyword models that disagree, and app factories.

v0001 says "moon" is Bullish and "crash" Bearish; v0002 (three labels) says the opposite.
Whatever version answers is therefore visible in the label, not only in ``model_version``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from api.app import create_app
from loop.registry import ModelRegistry
from loop.settings import ApiSettings, Settings
from loop.testing.classifier import KeywordClassifier

KEY = "test-key-1"
OTHER_KEY = "second-key-22"

V1 = KeywordClassifier(
    ["Bearish", "Bullish"],
    {"moon": {"Bullish": 8}, "crash": {"Bearish": 8}},
)
V2 = KeywordClassifier(
    ["Bearish", "Bullish", "Neutral"],
    {"moon": {"Bearish": 8}, "crash": {"Bullish": 8}, "fed": {"Neutral": 8}},
)


def publish(registry: ModelRegistry, clf: KeywordClassifier) -> str:
    return registry.publish(clf.save, labels=clf.labels, kind="keywords").version


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    """v0001 (promoted) and v0002 (published, not promoted)."""
    registry = ModelRegistry(tmp_path / "registry")
    assert publish(registry, V1) == "v0001"
    assert publish(registry, V2) == "v0002"
    registry.promote("v0001")
    return registry


@pytest.fixture
def empty_registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "empty-registry")


def settings_for(registry: ModelRegistry, **api: Any) -> Settings:
    api.setdefault("keys", [SecretStr(KEY), SecretStr(OTHER_KEY)])
    # No background reload during a test unless the test asks for one.
    api.setdefault("reload_check_s", 3600)
    return Settings(
        home=registry.root.parent / "home", registry_dir=registry.root, api=ApiSettings(**api)
    )


AppFactory = Callable[..., FastAPI]


@pytest.fixture
def make_app(registry: ModelRegistry) -> AppFactory:
    """``make_app(registry=..., **api_settings)``: an app on ``registry`` (default: the two
    keyword models) with the given API settings (default: keys KEY and OTHER_KEY)."""

    def make(registry: ModelRegistry = registry, **api: Any) -> FastAPI:
        return create_app(settings_for(registry, **api))

    return make


@pytest.fixture
def client(make_app: AppFactory) -> Iterator[TestClient]:
    """A started app (lifespan ran: v0001 is loaded) whose requests carry a valid key."""
    with TestClient(make_app(), headers={"X-API-Key": KEY}) as client:
        yield client


def classify(client: TestClient, text: str) -> dict[str, Any]:
    response = client.post("/v1/classify", json={"text": text})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["results"][0]
    return result


def metric(client: TestClient, name: str, **labels: str) -> float:
    """The value of the sample ``name`` with exactly these labels in /metrics (0 if absent)."""
    response = client.get("/metrics")
    assert response.status_code == 200
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0
