"""API keys: what a caller without, with a wrong, or with a right key sees."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from tests.unit.api.conftest import KEY, OTHER_KEY, AppFactory

BODY = {"text": "to the moon"}


def test_a_request_without_a_key_is_refused_and_told_how_to_send_one(
    make_app: AppFactory,
) -> None:
    with TestClient(make_app()) as client:
        for method, path in [
            ("POST", "/v1/classify"),
            ("GET", "/v1/models"),
            ("GET", "/v1/models/v0001"),
            ("POST", "/v1/models/v0002/promote"),
            ("POST", "/v1/models/rollback"),
        ]:
            response = client.request(method, path, json=BODY)
            assert response.status_code == 401, (method, path, response.text)
            body = response.json()
            assert body["error"] == "unauthorized"
            assert "X-API-Key" in body["detail"] and "Bearer" in body["detail"]
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        # Nothing was promoted by the refused request.
        assert client.get("/health").json()["model_version"] == "v0001"


def test_a_wrong_key_is_refused_and_never_logged(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "not-the-key-9f8e7d"
    caplog.set_level(logging.DEBUG)
    with TestClient(make_app()) as client:
        by_header = client.post("/v1/classify", json=BODY, headers={"X-API-Key": wrong})
        by_bearer = client.post(
            "/v1/classify", json=BODY, headers={"Authorization": f"Bearer {wrong}"}
        )
        prefix = client.post("/v1/classify", json=BODY, headers={"X-API-Key": KEY[:-1]})
    for response in (by_header, by_bearer, prefix):
        assert response.status_code == 401
        assert response.json() == {"error": "unauthorized", "detail": "the API key is not valid"}
    assert wrong not in caplog.text and KEY not in caplog.text


@pytest.mark.parametrize(
    "headers",
    [
        {"X-API-Key": KEY},
        {"X-API-Key": OTHER_KEY},
        {"Authorization": f"Bearer {KEY}"},
        {"Authorization": f"bearer {OTHER_KEY}"},
        # A right key in either header is enough.
        {"X-API-Key": "wrong", "Authorization": f"Bearer {KEY}"},
    ],
)
def test_a_configured_key_in_either_header_is_accepted(
    make_app: AppFactory, headers: dict[str, str]
) -> None:
    with TestClient(make_app()) as client:
        response = client.post("/v1/classify", json=BODY, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["label"] == "Bullish"


def test_a_key_in_another_scheme_is_not_accepted(make_app: AppFactory) -> None:
    with TestClient(make_app()) as client:
        response = client.post("/v1/classify", json=BODY, headers={"Authorization": f"Basic {KEY}"})
    assert response.status_code == 401


def test_health_metrics_and_docs_need_no_key(make_app: AppFactory) -> None:
    with TestClient(make_app()) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/metrics").status_code == 200
        assert client.get("/docs").status_code == 200
        assert client.get("/openapi.json").status_code == 200


def test_without_configured_keys_auth_is_off_and_a_warning_says_so(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="api")
    with TestClient(make_app(keys=[])) as client:
        response = client.post("/v1/classify", json=BODY)
        client.post("/v1/classify", json=BODY)
    assert response.status_code == 200
    warnings = [r for r in caplog.records if "authentication is OFF" in r.getMessage()]
    assert len(warnings) == 1, "warned once at start-up, not per request"
