"""Hot reload: a promotion made by another process is served without a restart."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from loop.registry import ModelRegistry
from tests.unit.api.conftest import KEY, V1, AppFactory, classify, publish


def wait_for_version(client: TestClient, version: str | None, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/health").json()["model_version"] == version:
            return
        time.sleep(0.02)
    raise AssertionError(f"the API did not serve {version} within {timeout}s")


def test_a_promotion_by_another_process_is_served_after_the_next_check(
    make_app: AppFactory, registry: ModelRegistry
) -> None:
    with TestClient(make_app(reload_check_s=0.05), headers={"X-API-Key": KEY}) as client:
        assert classify(client, "moon")["label"] == "Bullish"
        # As the CLI or the trainer would: another registry object on the same folder.
        ModelRegistry(registry.root).promote("v0002")
        wait_for_version(client, "v0002")
        after = classify(client, "moon")
        assert (after["label"], after["model_version"]) == ("Bearish", "v0002")

        ModelRegistry(registry.root).rollback()
        wait_for_version(client, "v0001")
        assert classify(client, "moon")["label"] == "Bullish"


def test_an_api_started_without_a_model_serves_the_first_promotion(
    make_app: AppFactory, empty_registry: ModelRegistry
) -> None:
    with TestClient(
        make_app(registry=empty_registry, reload_check_s=0.05), headers={"X-API-Key": KEY}
    ) as client:
        assert client.post("/v1/classify", json={"text": "moon"}).status_code == 503
        other = ModelRegistry(empty_registry.root)
        other.promote(publish(other, V1))
        wait_for_version(client, "v0001")
        assert classify(client, "moon")["label"] == "Bullish"


def test_without_a_check_due_the_old_version_keeps_serving(
    client: TestClient, registry: ModelRegistry
) -> None:
    """The reload is the background check's doing (the client fixture checks hourly)."""
    ModelRegistry(registry.root).promote("v0002")
    time.sleep(0.3)
    assert classify(client, "moon")["model_version"] == "v0001"
    assert client.get("/health").json()["status"] == "degraded"
