"""POST /v1/classify: answers, ids, limits, and what a caller sees when something is wrong."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from fastapi.testclient import TestClient

from loop.ids import content_id
from loop.registry import ModelRegistry
from loop.testing.classifier import KeywordClassifier
from tests.unit.api.conftest import KEY, AppFactory, classify


def test_one_text_gets_label_score_probabilities_and_version(client: TestClient) -> None:
    response = client.post("/v1/classify", json={"text": "Bitcoin to the moon"})
    assert response.status_code == 200
    body = response.json()
    assert body["model_version"] == "v0001"
    [result] = body["results"]
    assert result["label"] == "Bullish"
    assert result["model_version"] == "v0001"
    assert set(result["probabilities"]) == {"Bearish", "Bullish"}
    assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert result["score"] == max(result["probabilities"].values())
    assert result["score"] > 0.5
    assert result["id"] == content_id("Bitcoin to the moon")


def test_a_batch_is_answered_in_order_with_the_ids_given(client: TestClient) -> None:
    documents = [
        {"id": "a", "text": "moon moon"},
        {"id": "b", "text": "market crash"},
        {"text": "moon"},
    ]
    response = client.post("/v1/classify", json={"documents": documents})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["id"] for r in results] == ["a", "b", content_id("moon")]
    assert [r["label"] for r in results] == ["Bullish", "Bearish", "Bullish"]
    assert all(r["model_version"] == "v0001" for r in results)


def test_the_same_text_always_gets_the_same_id(client: TestClient) -> None:
    first = classify(client, "Fed holds rates")
    again = classify(client, "Fed holds rates\n")
    assert first["id"] == again["id"]
    assert classify(client, "Fed cuts rates")["id"] != first["id"]
    with_id = client.post("/v1/classify", json={"id": "tw-7", "text": "Fed holds rates"})
    assert with_id.json()["results"][0]["id"] == "tw-7"


def test_without_a_promoted_model_classify_answers_503_and_says_why(
    make_app: AppFactory, empty_registry: ModelRegistry
) -> None:
    with TestClient(make_app(registry=empty_registry), headers={"X-API-Key": KEY}) as client:
        response = client.post("/v1/classify", json={"text": "moon"})
        assert client.get("/health").status_code == 200
    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "no_model"
    assert "no version is promoted" in body["detail"]


# -------------------------------------------------------------------------------- limits


def test_a_batch_over_the_limit_is_refused_naming_the_limit(make_app: AppFactory) -> None:
    with TestClient(make_app(max_batch=3), headers={"X-API-Key": KEY}) as client:
        ok = client.post("/v1/classify", json={"documents": [{"text": "moon"}] * 3})
        over = client.post("/v1/classify", json={"documents": [{"text": "moon"}] * 4})
    assert ok.status_code == 200 and len(ok.json()["results"]) == 3
    assert over.status_code == 413
    body = over.json()
    assert body["error"] == "batch_too_large"
    assert "4 documents" in body["detail"] and "limit is 3" in body["detail"]


def test_a_text_over_the_limit_is_refused_naming_document_and_limit(
    make_app: AppFactory,
) -> None:
    with TestClient(make_app(max_text_chars=10), headers={"X-API-Key": KEY}) as client:
        ok = client.post("/v1/classify", json={"text": "x" * 10})
        over = client.post(
            "/v1/classify",
            json={"documents": [{"text": "moon"}, {"id": "long-one", "text": "x" * 11}]},
        )
    assert ok.status_code == 200
    assert over.status_code == 422
    body = over.json()
    assert body["error"] == "text_too_long"
    assert "document 1 ('long-one') has 11 characters" in body["detail"]
    assert "limit is 10" in body["detail"]


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ({"text": ""}, "text"),
        ({"text": "   \n"}, "text"),
        ({"documents": [{"text": "moon"}, {"text": ""}]}, "documents.1.text"),
        ({"documents": [{"id": "x", "text": "\t"}]}, "documents.0.text"),
    ],
)
def test_an_empty_text_is_refused_saying_which(
    client: TestClient, payload: dict[str, Any], where: str
) -> None:
    response = client.post("/v1/classify", json=payload)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_request"
    assert body["detail"].startswith(f"{where}: ")
    assert [e["loc"] for e in body["errors"]] == [where]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({}, 'give either "text"'),
        ({"text": "moon", "documents": [{"text": "moon"}]}, 'give either "text"'),
        ({"documents": []}, "documents: List should have at least 1 item"),
        ({"txt": "moon"}, "txt: Extra inputs are not permitted"),
        ({"documents": [{"id": "", "text": "moon"}]}, "documents.0.id"),
    ],
)
def test_a_malformed_request_is_refused_with_a_readable_message(
    client: TestClient, payload: dict[str, Any], message: str
) -> None:
    response = client.post("/v1/classify", json=payload)
    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_a_body_that_is_not_json_is_refused(client: TestClient) -> None:
    response = client.post(
        "/v1/classify", content=b'{"text": "moon"', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    body = response.json()
    assert body["detail"] == "the request body is not valid JSON: Expecting ',' delimiter"
    assert body["errors"] == [{"loc": "body", "msg": "JSON decode error"}]


def test_a_body_sent_without_a_json_content_type_is_refused_saying_so(
    client: TestClient,
) -> None:
    response = client.post(
        "/v1/classify",
        content=b'{"text": "moon"}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 422
    assert "Content-Type: application/json" in response.json()["detail"]


def test_a_body_over_the_byte_limit_is_refused_by_its_declared_length(
    make_app: AppFactory,
) -> None:
    with TestClient(make_app(max_body_bytes=200), headers={"X-API-Key": KEY}) as client:
        ok = client.post("/v1/classify", json={"text": "moon " * 30})
        over = client.post("/v1/classify", json={"text": "moon " * 50})
    assert ok.status_code == 200
    assert over.status_code == 413
    assert over.json() == {
        "error": "body_too_large",
        "detail": "the request body is larger than the limit of 200 bytes "
        "(ALLOOP_API__MAX_BODY_BYTES)",
    }


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_read(
    make_app: AppFactory,
) -> None:
    with TestClient(make_app(max_body_bytes=200), headers={"X-API-Key": KEY}) as client:
        response = client.post(
            "/v1/classify",
            content=b'{"text": "moon"}',
            headers={"Content-Type": "application/json", "Content-Length": "5000000"},
        )
    assert response.request.headers["Content-Length"] == "5000000"
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"


def test_a_chunked_body_over_the_byte_limit_is_refused_while_it_is_read(
    make_app: AppFactory,
) -> None:
    def chunks(n: int) -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(n):
            yield b"moon " * 10
        yield b'"}'

    with TestClient(make_app(max_body_bytes=200), headers={"X-API-Key": KEY}) as client:
        ok = client.post(
            "/v1/classify", content=chunks(2), headers={"Content-Type": "application/json"}
        )
        over = client.post(
            "/v1/classify", content=chunks(10), headers={"Content-Type": "application/json"}
        )
    assert "content-length" not in {k.lower() for k in over.request.headers}
    assert ok.status_code == 200, ok.text
    assert ok.json()["results"][0]["label"] == "Bullish"
    assert over.status_code == 413
    assert "limit of 200 bytes" in over.json()["detail"]


# ------------------------------------------------------------------- one version per request


def test_a_request_is_answered_by_the_version_it_started_with(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A promotion while the model is busy does not mix versions within one answer."""
    inside = threading.Event()
    release = threading.Event()
    real = KeywordClassifier.predict_proba

    def slow_v1(
        self: KeywordClassifier, texts: Sequence[str], batch_size: int = 64
    ) -> npt.NDArray[np.float32]:
        if len(self.labels) == 2 and texts == ["moon"]:
            inside.set()
            assert release.wait(10)
        return real(self, texts, batch_size)

    monkeypatch.setattr(KeywordClassifier, "predict_proba", slow_v1)
    answers: list[dict[str, Any]] = []
    request = threading.Thread(
        target=lambda: answers.append(client.post("/v1/classify", json={"text": "moon"}).json())
    )
    request.start()
    try:
        assert inside.wait(10), "the first request never reached the model"
        promoted = client.post("/v1/models/v0002/promote")
        assert promoted.json()["served"] == "v0002"
    finally:
        release.set()
        request.join(10)
    [answer] = answers
    assert answer["model_version"] == "v0001"
    [result] = answer["results"]
    assert result["model_version"] == "v0001"
    assert result["label"] == "Bullish"
    assert set(result["probabilities"]) == {"Bearish", "Bullish"}
    # The next request sees the new version.
    assert classify(client, "moon")["model_version"] == "v0002"


def test_a_multi_label_model_returns_every_label_that_applies(
    make_app: AppFactory, empty_registry: ModelRegistry
) -> None:
    from tests.unit.api.conftest import publish

    multi = KeywordClassifier(
        ["card", "fee", "pin"],
        {"card": {"card": 9, "\x00seen": 10}, "pin": {"pin": 7, "\x00seen": 10}},
        multi_label=True,
    )
    empty_registry.promote(publish(empty_registry, multi))
    with TestClient(make_app(registry=empty_registry), headers={"X-API-Key": KEY}) as client:
        both, neither = client.post(
            "/v1/classify",
            json={"documents": [{"text": "new card and pin"}, {"text": "hello"}]},
        ).json()["results"]
        # card 9/11, pin 7/11: both apply; "hello" has no known word: no label applies
        assert both["labels"] == ["card", "pin"] and both["label"] == "card"
        assert sum(both["probabilities"].values()) > 1.0  # independent, not a distribution
        assert neither["labels"] == []
        single = classify_with(make_app, "moon")
        assert single["labels"] is None  # a single-label model has no label set


def classify_with(make_app: AppFactory, text: str) -> dict[str, Any]:
    with TestClient(make_app(), headers={"X-API-Key": KEY}) as client:
        return classify(client, text)
