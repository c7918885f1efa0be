"""GET /v1/drift and the drift gauges: the scorer's reports as the API shows them."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient

from loop.drift.base import DriftResult
from loop.drift.report import DriftReport
from loop.drift.store import DriftStore
from loop.settings import Settings
from tests.unit.api.conftest import KEY, AppFactory, metric


def report(drift: bool, auc: float) -> DriftReport:
    return DriftReport(
        window=0,
        at=datetime(2026, 12, 6, 20, 0, tzinfo=UTC),
        model_version="v0001",
        documents=200,
        reference_documents=400,
        drift=drift,
        results=[
            DriftResult(
                method="embedding-auc",
                score=auc,
                threshold=0.6,
                direction="above",
                crossed=auc > 0.6,
            ),
            DriftResult(
                method="confidence-drop",
                score=0.01,
                threshold=0.03,
                direction="above",
                crossed=False,
                reference=0.8,
            ),
        ],
    )


def settings_of(client: TestClient) -> Settings:
    settings = client.app.state.alloop.settings  # type: ignore[attr-defined]
    assert isinstance(settings, Settings)
    return settings


def test_drift_history_is_empty_before_the_scorer_reports(make_app: AppFactory) -> None:
    with TestClient(make_app(), headers={"X-API-Key": KEY}) as client:
        response = client.get("/v1/drift")
        assert response.status_code == 200 and response.json() == []
        assert (
            client.get("/v1/drift?format=svg").headers["content-type"].startswith("image/svg+xml")
        )
        assert metric(client, "alloop_drift_detected") == 0


def test_drift_history_pictures_and_gauges_follow_the_store(make_app: AppFactory) -> None:
    with TestClient(make_app(), headers={"X-API-Key": KEY}) as client:
        store = DriftStore(settings_of(client).drift_path)
        store.add(report(False, 0.52))
        store.add(report(True, 0.93))
        history = client.get("/v1/drift").json()
        assert [r["window"] for r in history] == [1, 2]
        assert [r["drift"] for r in history] == [False, True]
        assert history[1]["results"][0] == {
            "method": "embedding-auc",
            "score": 0.93,
            "threshold": 0.6,
            "direction": "above",
            "crossed": True,
            "reference": None,
            "detail": {},
        }
        assert [r["window"] for r in client.get("/v1/drift?last=1").json()] == [2]
        png = client.get("/v1/drift?format=png")
        assert png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
        assert metric(client, "alloop_drift_detected") == 1
        assert metric(client, "alloop_drift_window") == 2
        assert metric(client, "alloop_drift_score", method="embedding-auc") == 0.93
        assert metric(client, "alloop_drift_threshold", method="confidence-drop") == 0.03
        store.add(report(False, 0.5))
        assert metric(client, "alloop_drift_detected") == 0


def test_drift_needs_a_key(make_app: AppFactory) -> None:
    with TestClient(make_app()) as client:
        assert client.get("/v1/drift").status_code == 401
