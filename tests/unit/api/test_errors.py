"""Server errors: the body says that something failed and under which request id; what failed
(file paths, exception text) is in the server log only."""

from __future__ import annotations

import logging

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from loop.errors import ConfigError, ModelError
from tests.unit.api.conftest import KEY, AppFactory

SECRET_PATH = "/srv/alloop/registry/versions/v0007/model"


def failing_app(make_app: AppFactory) -> FastAPI:
    app = make_app()

    def model_error() -> None:
        raise ModelError(f"cannot load the SetFit model in {SECRET_PATH}: bad header")

    def config_error() -> None:
        raise ConfigError(f"cannot read the gazetteers {SECRET_PATH}/gazetteers.json")

    def unexpected() -> None:
        raise RuntimeError(f"[Errno 28] No space left on device: '{SECRET_PATH}'")

    app.add_api_route("/v1/test/model-error", model_error)
    app.add_api_route("/v1/test/config-error", config_error)
    app.add_api_route("/v1/test/unexpected", unexpected)
    return app


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/v1/test/model-error", "model_error"),
        ("/v1/test/config-error", "config_error"),
        ("/v1/test/unexpected", "internal_error"),
    ],
)
def test_a_500_body_names_a_request_id_and_no_detail(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture, path: str, code: str
) -> None:
    app = failing_app(make_app)
    with (
        TestClient(app, headers={"X-API-Key": KEY}, raise_server_exceptions=False) as client,
        caplog.at_level(logging.ERROR, logger="api.errors"),
    ):
        response = client.get(path)

    assert response.status_code == 500
    body = response.json()
    assert body["error"] == code
    assert SECRET_PATH not in response.text and "/srv" not in response.text
    request_id = body["request_id"]
    assert len(request_id) >= 16
    assert request_id in body["detail"] and "internal error" in body["detail"]
    assert response.headers["X-Request-ID"] == request_id
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert request_id in logged and SECRET_PATH in logged  # the operator finds what failed


def test_a_request_id_the_client_sent_is_kept_and_a_malformed_one_replaced(
    make_app: AppFactory,
) -> None:
    app = failing_app(make_app)
    with TestClient(app, headers={"X-API-Key": KEY}, raise_server_exceptions=False) as client:
        given = client.get("/v1/test/model-error", headers={"X-Request-ID": "lb-4f2a-91"})
        forged = client.get("/v1/test/model-error", headers={"X-Request-ID": "x\nERROR forged"})
    assert given.json()["request_id"] == "lb-4f2a-91"
    assert "forged" not in forged.json()["request_id"]


def test_client_errors_carry_no_request_id(make_app: AppFactory) -> None:
    with TestClient(make_app(), headers={"X-API-Key": KEY}) as client:
        response = client.get("/v1/models/v0099")
    assert response.status_code == 404
    assert "request_id" not in response.json()
