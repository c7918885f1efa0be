"""The model owners' page: its files are open, its data needs a key, and every endpoint its
script reads is one the API serves."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from api.routers.ui import PAGE_DIR
from connectors.argilla.queue import annotation_url, find_dataset, pending_in, pending_total
from loop.entities.base import Example, ExtractorConfig, make_span
from loop.labels import LabelStore
from loop.messages import LabelEvent
from loop.registry import ModelRegistry
from loop.settings import ApiSettings, EntitySettings, Settings
from loop.testing.extractor import GazetteerFactory
from tests.unit.api.conftest import KEY, AppFactory, settings_for


def test_the_page_and_its_files_are_served_without_a_key(make_app: AppFactory) -> None:
    with TestClient(make_app()) as client:
        page = client.get("/ui")
        script = client.get("/ui/app.js")
        style = client.get("/ui/style.css")
        data = client.get("/v1/models")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/ui/app.js"' in page.text and 'href="/ui/style.css"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "connect-src 'self'" in page.headers["content-security-policy"]
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    assert data.status_code == 401  # what the page shows needs a key


def test_only_the_pages_own_files_are_served(client: TestClient) -> None:
    for path in ("/ui/index.py", "/ui/..%2Frouters%2Fui.py", "/ui/%2E%2E", "/ui/secret.txt"):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert answer.json()["error"] == "not_found"


def test_nothing_is_fetched_from_elsewhere() -> None:
    for name in ("index.html", "app.js", "style.css"):
        text = (PAGE_DIR / name).read_text(encoding="utf-8")
        assert not re.search(r"https?://", text), name


def test_every_endpoint_the_script_reads_is_served(make_app: AppFactory) -> None:
    script = (PAGE_DIR / "app.js").read_text(encoding="utf-8")
    called = set(re.findall(r"[`\"](/(?:v1|ui)/[a-z/]*)", script))
    assert {
        "/v1/models",
        "/v1/curves",
        "/v1/evaluations/deltas",
        "/v1/queue",
        "/v1/drift",
    } <= called
    served = set(make_app().openapi()["paths"])

    def answered(path: str) -> bool:  # "/v1/models/" stands for "/v1/models/{version}/..."
        return path in served or (path.endswith("/") and any(p.startswith(path) for p in served))

    missing = {path for path in called if not answered(path)}
    assert not missing


def test_settings_name_the_tasks_that_are_on_and_whether_a_key_is_needed(
    registry: ModelRegistry,
) -> None:
    with TestClient(create_app(settings_for(registry))) as client:
        keyed = client.get("/ui/settings").json()
    entities_on = Settings(
        home=registry.root.parent / "home",
        registry_dir=registry.root,
        api=ApiSettings(keys=[], reload_check_s=3600),
        entities=EntitySettings(enabled=True),
    )
    with TestClient(create_app(entities_on)) as client:
        open_ = client.get("/ui/settings").json()
    assert keyed["tasks"] == ["classification"] and keyed["auth"] is True
    assert open_["tasks"] == ["classification", "entities"] and open_["auth"] is False
    assert "accuracy" in keyed["metrics"]["classification"]
    assert "unseen_recall" in keyed["metrics"]["entities"]
    assert keyed["label_metrics"] == ["f1", "precision", "recall"]


def publish_taggers(registry: ModelRegistry, count: int) -> ModelRegistry:
    entity_registry = ModelRegistry(registry.root / "entities")
    for i in range(count):
        text = f"desk {i} in Zürich"
        extractor = GazetteerFactory().train(
            [Example(text, (make_span(text, len(text) - 6, len(text), "CITY"),))],
            ExtractorConfig(),
        )
        entity_registry.publish(extractor.save, labels=["CITY"], task="entities", kind="gazetteer")
    return entity_registry


def entity_client(registry: ModelRegistry) -> TestClient:
    settings = Settings(
        home=registry.root.parent / "home",
        registry_dir=registry.root,
        api=ApiSettings(keys=[SecretStr(KEY)], reload_check_s=3600),
        entities=EntitySettings(enabled=True),
    )
    return TestClient(create_app(settings), headers={"X-API-Key": KEY})


def test_the_entity_versions_are_listed_promoted_and_rolled_back(registry: ModelRegistry) -> None:
    entity_registry = publish_taggers(registry, 2)
    with entity_client(registry) as client:
        before = client.get("/v1/models", params={"task": "entities"}).json()
        first = client.post("/v1/models/v0001/promote", params={"task": "entities"}).json()
        second = client.post("/v1/models/v0002/promote", params={"task": "entities"}).json()
        card = client.get("/v1/models/v0002", params={"task": "entities"}).json()
        back = client.post("/v1/models/rollback", params={"task": "entities"}).json()
        classifier = client.get("/v1/models").json()
        unknown = client.get("/v1/models", params={"task": "sentiment"})
    assert [m["version"] for m in before["models"]] == ["v0001", "v0002"]
    assert {m["task"] for m in before["models"]} == {"entities"}
    assert before["promoted"] is None and before["served"] is None
    assert (first["promoted"], first["served"]) == ("v0001", "v0001")
    assert (second["promoted"], second["served"]) == ("v0002", "v0002")
    assert card["promoted"] and card["served"]
    assert (back["promoted"], back["served"]) == ("v0001", "v0001")
    assert entity_registry.promoted() == "v0001"
    assert classifier["promoted"] == "v0001" and classifier["models"][1]["labels"] != ["CITY"]
    assert registry.promoted() == "v0001"  # the classifier's pointer did not move
    assert unknown.status_code == 422 and unknown.json()["error"] == "unknown_task"


def test_the_classifiers_task_name_reads_the_classifier_registry(registry: ModelRegistry) -> None:
    publish_taggers(registry, 1)
    settings = settings_for(registry).model_copy(
        update={"trainer": settings_for(registry).trainer.model_copy(update={"task": "tone"})}
    )
    with TestClient(create_app(settings), headers={"X-API-Key": KEY}) as client:
        named = client.get("/v1/models", params={"task": "tone"}).json()
        default = client.get("/v1/models").json()
        entities = client.get("/v1/models", params={"task": "entities"}).json()
    assert named == default and named["served"] == registry.promoted()
    assert [m["version"] for m in named["models"]] == registry.versions()
    assert [m["kind"] for m in entities["models"]] == ["gazetteer"]


def test_the_queue_reports_the_annotators_agreement(registry: ModelRegistry) -> None:
    settings = settings_for(registry)
    store = LabelStore(settings.labels_path)
    votes = [("d1", "a", "up"), ("d1", "b", "up"), ("d1", "c", "down"), ("d2", "a", "up")]
    store.add(
        LabelEvent(id=doc, text=f"text {doc}", label=label, response_id=f"{doc}-{who}")
        for doc, who, label in votes
    )
    with TestClient(create_app(settings), headers={"X-API-Key": KEY}) as client:
        body = client.get("/v1/queue").json()
    assert body["agreement"] == pytest.approx((2 / 3 + 1) / 2, abs=1e-3)
    assert body["answers"] == 4 and body["labelled"] == 2
    assert body["pending_in_argilla"] is None and body["argilla_url"] is None  # no Argilla here


def fake_argilla(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/api/v1/me/datasets":
        return httpx.Response(
            200, json={"items": [{"id": "ds-7", "name": "alloop-classification"}]}
        )
    if request.url.path == "/api/v1/datasets/ds-7/records/search":
        return httpx.Response(200, json={"items": [], "total": 12})
    return httpx.Response(404, json={"detail": "unexpected"})


def test_the_queue_link_opens_the_dataset_in_argillas_annotation_mode() -> None:
    http = httpx.Client(base_url="http://argilla", transport=httpx.MockTransport(fake_argilla))
    found = find_dataset(http, "alloop-classification")
    assert found is not None and found["id"] == "ds-7"
    assert find_dataset(http, "alloop-entities") is None
    assert pending_in(http, "ds-7") == 12
    assert pending_total(http, "alloop-classification") == 12
    assert pending_total(http, "alloop-entities") == 0
    assert (
        annotation_url("http://argilla:6900/", "ds-7")
        == "http://argilla:6900/dataset/ds-7/annotation-mode"
    )


def test_the_page_files_are_package_data() -> None:
    pyproject = (Path(__file__).parents[3] / "pyproject.toml").read_text(encoding="utf-8")
    for name in ("index.html", "app.js", "style.css"):
        assert (PAGE_DIR / name).is_file()
    assert 'api = ["ui/*.html", "ui/*.js", "ui/*.css"]' in pyproject
