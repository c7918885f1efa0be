"""/v1/models: listing, promotion and rollback change what /v1/classify answers at once."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from loop.registry import ModelRegistry
from tests.unit.api.conftest import KEY, AppFactory, classify


def test_the_list_shows_every_version_and_which_is_promoted_and_served(
    client: TestClient,
) -> None:
    response = client.get("/v1/models")
    assert response.status_code == 200
    body = response.json()
    assert body["promoted"] == "v0001" and body["served"] == "v0001"
    assert body["history"] == []
    assert [m["version"] for m in body["models"]] == ["v0001", "v0002"]
    first, second = body["models"]
    assert first["promoted"] and first["served"]
    assert not second["promoted"] and not second["served"]
    assert second["labels"] == ["Bearish", "Bullish", "Neutral"]
    assert second["kind"] == "keywords"


def test_one_version_shows_its_card(client: TestClient, registry: ModelRegistry) -> None:
    registry.attach_metrics("v0002", {"macro_f1": 0.81})
    body = client.get("/v1/models/v0002").json()
    assert body["version"] == "v0002"
    assert body["labels"] == ["Bearish", "Bullish", "Neutral"]
    assert body["metrics"] == {"macro_f1": 0.81}
    assert body["promoted"] is False


def test_an_unknown_version_is_404_with_a_message(client: TestClient) -> None:
    for response in [client.get("/v1/models/v0009"), client.post("/v1/models/v0009/promote")]:
        assert response.status_code == 404
        assert response.json() == {
            "error": "version_not_found",
            "detail": "no model version 'v0009'",
        }
    bad_name = client.get("/v1/models/latest")
    assert bad_name.status_code == 404
    assert "not a version name" in bad_name.json()["detail"]
    # The failed promotion moved nothing.
    assert classify(client, "moon")["model_version"] == "v0001"


def test_promote_serves_the_new_version_at_once_and_rollback_restores_the_old(
    client: TestClient, registry: ModelRegistry
) -> None:
    before = classify(client, "to the moon")
    assert (before["label"], before["model_version"]) == ("Bullish", "v0001")

    promoted = client.post("/v1/models/v0002/promote")
    assert promoted.status_code == 200
    state = promoted.json()
    assert state["promoted"] == "v0002" and state["served"] == "v0002"
    assert state["history"] == ["v0001"]
    assert registry.promoted() == "v0002", "the registry's pointer moved, for other processes"
    after = classify(client, "to the moon")
    assert (after["label"], after["model_version"]) == ("Bearish", "v0002")
    assert set(after["probabilities"]) == {"Bearish", "Bullish", "Neutral"}

    rolled = client.post("/v1/models/rollback")
    assert rolled.status_code == 200
    assert rolled.json()["promoted"] == "v0001" and rolled.json()["served"] == "v0001"
    assert rolled.json()["history"] == []
    assert registry.promoted() == "v0001"
    again = classify(client, "to the moon")
    assert (again["label"], again["model_version"]) == ("Bullish", "v0001")


def test_promoting_the_promoted_version_changes_nothing(client: TestClient) -> None:
    response = client.post("/v1/models/v0001/promote")
    assert response.status_code == 200
    assert response.json()["history"] == []
    assert client.post("/v1/models/rollback").status_code == 409


def test_rollback_with_nothing_to_roll_back_is_409_and_keeps_serving(
    client: TestClient,
) -> None:
    response = client.post("/v1/models/rollback")
    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "nothing_to_roll_back"
    assert "no earlier promoted version" in body["detail"]
    assert classify(client, "moon")["model_version"] == "v0001"


def test_a_version_that_cannot_load_is_reported_and_the_old_one_keeps_serving(
    make_app: AppFactory, registry: ModelRegistry
) -> None:
    def save_nothing(path: Path) -> None:
        path.mkdir()

    broken = registry.publish(save_nothing, labels=["a", "b"], kind="keywords").version
    with TestClient(make_app(), headers={"X-API-Key": KEY}) as client:
        response = client.post(f"/v1/models/{broken}/promote")
        assert response.status_code == 500
        body = response.json()
        assert body["error"] == "model_load_failed"
        assert f"{broken} is promoted but could not be loaded" in body["detail"]
        assert "still serves v0001" in body["detail"]
        assert str(registry.root) not in response.text  # no path, but a request id to quote
        assert body["request_id"] == response.headers["X-Request-ID"]
        assert classify(client, "moon")["model_version"] == "v0001"
        health = client.get("/health").json()
        assert health["status"] == "degraded" and health["promoted_version"] == broken

        assert client.post("/v1/models/rollback").json()["served"] == "v0001"
        assert client.get("/health").json()["status"] == "ok"
