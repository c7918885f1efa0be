"""Evaluations, deltas, curves and the queue, on versions made by real training rounds (with
the keyword model, so that they take milliseconds)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from loop.labels import LabelStore
from loop.messages import LabelEvent
from loop.registry import ModelRegistry
from loop.testing.classifier import KeywordFactory
from loop.training.gate import Gate
from loop.training.rounds import RoundConfig, run_round
from loop.training.split import EVALUATION
from tests.unit.api.conftest import KEY, settings_for

WORDS = {"up": ["soar", "rally", "gain", "jump"], "down": ["crash", "plunge", "drop", "slide"]}


def answers(n: int, wrong_training: bool) -> list[LabelEvent]:
    events = []
    for i in range(n):
        label = "up" if i % 2 else "down"
        text = f"stocks {WORDS[label][i % 4]} today {i}"
        origin = EVALUATION if i % 5 == 0 else "uncertain"
        if wrong_training and i % 3 != 0 and origin != EVALUATION:
            label = "down" if label == "up" else "up"
        events.append(
            LabelEvent(
                id=f"doc-{i}",
                text=text,
                label=label,
                response_id=f"r{i}-{wrong_training}",
                origin=origin,
            )
        )
    return events


def trained(tmp_path: Path) -> tuple[ModelRegistry, TestClient]:
    """v0001 trained on bad labels, v0002 on good ones (promoted): a clear improvement."""
    registry = ModelRegistry(tmp_path / "registry")
    settings = settings_for(registry)
    for wrong in (True, False):
        store = LabelStore(tmp_path / f"store-{wrong}.db")
        store.add(answers(120, wrong))
        run_round(
            store.labelled(), registry, KeywordFactory(), RoundConfig(gate=Gate(min_test_size=10))
        )
    final = LabelStore(settings.labels_path)
    final.add(answers(120, False))
    return registry, TestClient(create_app(settings), headers={"X-API-Key": KEY})


def test_an_evaluation_has_per_label_metrics_confusion_and_origins(tmp_path: Path) -> None:
    _, client = trained(tmp_path)
    with client:
        body = client.get("/v1/evaluations/v0002").json()
    assert body["macro"]["f1"] == 1.0
    assert set(body["per_label"]) == {"down", "up"}
    assert {"tp", "fp", "fn", "support", "precision", "recall", "f1"} <= set(
        body["per_label"]["up"]
    )
    assert sum(map(sum, body["confusion"])) == body["test_size"]
    assert sum(body["test_origins"].values()) == body["test_size"]


def test_deltas_default_to_the_latest_against_what_it_replaced(tmp_path: Path) -> None:
    _, client = trained(tmp_path)
    with client:
        delta = client.get("/v1/evaluations/deltas").json()
        explicit = client.get(
            "/v1/evaluations/deltas", params={"base": "v0001", "head": "v0002"}
        ).json()
    assert (delta["base"], delta["head"]) == ("v0001", "v0002")
    assert delta["macro_f1"]["delta"] > 0.3
    assert delta["macro_f1"]["ci_low"] > 0
    assert delta["fixed"] and not delta["broken"]
    assert explicit["macro_f1"] == delta["macro_f1"]


def test_curves_as_json_and_as_pictures(tmp_path: Path) -> None:
    _, client = trained(tmp_path)
    with client:
        curves = client.get("/v1/curves").json()
        per_label = client.get("/v1/curves", params={"label": "up"}).json()
        png = client.get("/v1/curves", params={"format": "png"})
        svg = client.get("/v1/curves", params={"format": "svg", "label": "up"})
        bad = client.get("/v1/curves", params={"metric": "nonsense"})
    macro = next(c for c in curves if c["metric"] == "macro_f1")
    assert [p["version"] for p in macro["points"]] == ["v0001", "v0002"]
    assert macro["points"][1]["value"] > macro["points"][0]["value"]
    assert macro["points"][1]["promoted"] is True
    assert per_label[0]["label"] == "up" and len(per_label[0]["points"]) == 2
    assert png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
    assert svg.headers["content-type"].startswith("image/svg+xml") and b"<svg" in svg.content
    assert bad.status_code == 400 and "nonsense" in bad.json()["detail"]


def test_unknown_or_unevaluated_versions_are_4xx(tmp_path: Path) -> None:
    registry, client = trained(tmp_path)
    clf = KeywordFactory().train(["a", "b"], ["x", "y"], RoundConfig().classifier)
    registry.publish(clf.save, labels=clf.labels, kind="keywords")  # by hand: no evaluation
    with client:
        missing = client.get("/v1/evaluations/v0099")
        by_hand = client.get("/v1/evaluations/v0003")
    assert missing.status_code == 404 and missing.json()["error"] == "version_not_found"
    assert by_hand.status_code == 404 and by_hand.json()["error"] == "not_evaluated"


def test_the_queue_counts_labels_and_what_is_not_trained_yet(tmp_path: Path) -> None:
    _, client = trained(tmp_path)
    with client:
        body = client.get("/v1/queue").json()
    assert body["answers"] == 120 and body["labelled"] == 120
    assert body["not_yet_trained"] == 0
    assert body["promoted_version"] == "v0002" and body["latest_version"] == "v0002"


def test_flipped_documents_carry_their_texts_from_the_label_store(tmp_path: Path) -> None:
    _, client = trained(tmp_path)
    with client:
        delta = client.get("/v1/evaluations/deltas").json()
    texts = {event.id: event.text for event in answers(120, False)}
    assert delta["fixed"]
    assert all(flip["text"] == texts[flip["id"]] for flip in delta["fixed"] + delta["broken"])
