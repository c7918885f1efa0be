"""/health, /metrics and the OpenAPI docs."""

from __future__ import annotations

from fastapi.testclient import TestClient

from loop.registry import ModelRegistry
from tests.unit.api.conftest import KEY, AppFactory, metric


def test_health_names_the_served_version(client: TestClient) -> None:
    response = client.get("/health", headers={"X-API-Key": ""})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["model_version"] == "v0001" and body["promoted_version"] == "v0001"


def test_health_is_200_without_a_model_but_says_so(
    make_app: AppFactory, empty_registry: ModelRegistry
) -> None:
    with TestClient(make_app(registry=empty_registry)) as client:
        response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "no_model"
    assert body["model_version"] is None
    assert "no model is promoted" in body["detail"]


def test_classify_counts_documents_requests_and_latency(client: TestClient) -> None:
    docs = "alloop_api_documents_classified_total"
    requests = "alloop_api_requests_total"
    ok = {"endpoint": "/v1/classify", "method": "POST", "status": "200"}
    refused = {**ok, "status": "413"}
    latency = "alloop_api_request_duration_seconds_count"
    before = {
        "docs": metric(client, docs, model_version="v0001"),
        "ok": metric(client, requests, **ok),
        "refused": metric(client, requests, **refused),
        "latency": metric(client, latency, endpoint="/v1/classify", method="POST"),
        "inference": metric(client, "alloop_api_inference_duration_seconds_count"),
    }
    client.post("/v1/classify", json={"text": "moon"})
    client.post("/v1/classify", json={"documents": [{"text": "moon"}, {"text": "crash"}]})
    client.post("/v1/classify", json={"documents": [{"text": "moon"}] * 300})  # over max_batch
    client.post("/v1/classify", json={"text": "moon " * 500_000})  # over max_body_bytes

    assert metric(client, docs, model_version="v0001") == before["docs"] + 3
    assert metric(client, requests, **ok) == before["ok"] + 2
    assert metric(client, requests, **refused) == before["refused"] + 2
    assert metric(client, latency, endpoint="/v1/classify", method="POST") == before["latency"] + 4
    assert metric(client, "alloop_api_inference_duration_seconds_count") == before["inference"] + 2


def test_requests_are_counted_by_route_template_not_raw_path(client: TestClient) -> None:
    client.get("/v1/models/v0001")
    client.get("/v1/models/v0002")
    client.get("/no/such/page")
    requests = "alloop_api_requests_total"
    by_template = {"endpoint": "/v1/models/{version}", "method": "GET", "status": "200"}
    assert metric(client, requests, **by_template) == 2
    assert metric(client, requests, endpoint="unmatched", method="GET", status="404") == 1


def test_metrics_show_the_served_version_and_follow_a_promotion(client: TestClient) -> None:
    assert metric(client, "alloop_api_model_info", version="v0001") == 1
    assert metric(client, "alloop_api_model_loaded") == 1
    reloads = metric(client, "alloop_api_model_reloads_total")
    client.post("/v1/models/v0002/promote")
    assert metric(client, "alloop_api_model_info", version="v0002") == 1
    assert metric(client, "alloop_api_model_info", version="v0001") == 0
    assert metric(client, "alloop_api_model_reloads_total") == reloads + 1


def test_each_app_has_its_own_metrics(make_app: AppFactory) -> None:
    with (
        TestClient(make_app(), headers={"X-API-Key": KEY}) as first,
        TestClient(make_app(), headers={"X-API-Key": KEY}) as second,
    ):
        first.post("/v1/classify", json={"text": "moon"})
        name = "alloop_api_documents_classified_total"
        assert metric(first, name, model_version="v0001") == 1
        assert metric(second, name, model_version="v0001") == 0


def test_openapi_docs_describe_every_endpoint(client: TestClient) -> None:
    assert "Swagger UI" in client.get("/docs").text
    spec = client.get("/openapi.json").json()
    operations = {
        (method.upper(), path): op
        for path, item in spec["paths"].items()
        for method, op in item.items()
    }
    assert set(operations) == {
        ("POST", "/v1/classify"),
        ("POST", "/v1/entities"),
        ("POST", "/v1/predict"),
        ("GET", "/v1/models"),
        ("GET", "/v1/models/{version}"),
        ("POST", "/v1/models/{version}/promote"),
        ("POST", "/v1/models/rollback"),
        ("POST", "/v1/argilla/webhooks"),
        ("GET", "/v1/evaluations/deltas"),
        ("GET", "/v1/evaluations/{version}"),
        ("GET", "/v1/curves"),
        ("GET", "/v1/curves/stopping"),
        ("GET", "/v1/queue"),
        ("GET", "/v1/drift"),
        ("GET", "/health"),
        ("GET", "/metrics"),
        ("GET", "/ui/settings"),
    }
    for key, op in operations.items():
        assert op.get("summary") and op.get("tags"), key
    assert set(spec["components"]["securitySchemes"]) == {"APIKeyHeader", "HTTPBearer"}
    assert "security" in operations[("POST", "/v1/classify")]
    assert "security" not in operations[("GET", "/health")]
    assert "security" not in operations[("GET", "/ui/settings")]  # the page asks it first
    assert "security" not in operations[("POST", "/v1/argilla/webhooks")]  # signed instead
