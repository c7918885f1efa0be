"""Multi-label classification through the real loop: a one-vs-rest SetFit seed model, the
scorer, the labeler's multi-label Argilla question, the oracle's answers, webhooks, the
trainer's round and the API, on NLU++ banking utterances (several intents each)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.argilla.setup import ensure_webhook, owner_client, remove_webhook
from loop.labels import LabelStore
from loop.messages import Document, LabelEvent, TaggedDocument, decode
from loop.readers import Columns, read_documents
from loop.registry import ModelRegistry
from stack.argilla import LocalArgilla
from stack.local import free_port
from tests.conftest import DATASETS
from tests.integration.conftest import Env, WorkerProcess, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NLUPP = DATASETS / "nlupp_banking"
INTENTS = ("card", "pin", "transfer_payment_deposit", "lost_stolen")


def utterances(fold: int) -> list[Document]:
    """One NLU++ fold, intents narrowed to INTENTS (utterances with none of them left out)."""
    docs = []
    for item in read_documents(NLUPP / f"fold{fold}.json", Columns(labels="intents")):
        assert isinstance(item, Document)
        labels = sorted(set(item.labels or ()) & set(INTENTS))
        if labels:
            docs.append(item.model_copy(update={"id": f"f{fold}-{item.id}", "labels": labels}))
    return docs


def write(path: Path, docs: list[Document], *, with_labels: bool = True) -> Path:
    rows = [
        {"id": d.id, "text": d.text, **({"labels": d.labels} if with_labels else {})} for d in docs
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture
def webhook(env: Env, argilla: LocalArgilla) -> Iterator[tuple[int, str]]:
    """A port for this test's API and the secret of Argilla's webhook to it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1/argilla/webhooks"
    with owner_client(argilla.url, argilla.credentials.owner_api_key) as http:
        secret = ensure_webhook(http, url)
        yield port, secret
        remove_webhook(http, url)


def test_label_sets_go_round_the_loop(
    env: Env,
    argilla: LocalArgilla,
    webhook: tuple[int, str],
    workers: Callable[..., WorkerProcess],
    tmp_path: Path,
) -> None:
    port, secret = webhook
    creds = argilla.credentials
    seeds, stream = utterances(0), utterances(1) + utterances(2)
    gold = {d.id: d.labels for d in stream}
    config = {
        "ALLOOP_CLASSIFICATION__MULTI_LABEL": "true",
        "ALLOOP_ARGILLA__URL": argilla.url,
        "ALLOOP_ARGILLA__API_KEY": creds.owner_api_key,
        "ALLOOP_ARGILLA__ANNOTATOR_API_KEY": creds.annotator_api_key,
        "ALLOOP_ARGILLA__DATASET_PREFIX": env.prefix,
        "ALLOOP_ARGILLA__LABELER_GROUP_ID": f"{env.prefix}-labeler",
        "ALLOOP_ARGILLA__WEBHOOK_SECRET": secret,
        "ALLOOP_ARGILLA__POLL_INTERVAL_S": "600",  # the webhooks carry the answers here
        "ALLOOP_API__PORT": str(port),
        "ALLOOP_SCORER__ROUND_SIZE": str(len(stream)),
        "ALLOOP_SCORER__CANDIDATES_PER_ROUND": "24",
        "ALLOOP_SCORER__RANDOM_FRACTION": "0.25",
        "ALLOOP_SCORER__EVALUATION_FRACTION": "0",  # the test set is the owner's file here
        "ALLOOP_TRAINER__MIN_TEST_SIZE": "10",
        "ALLOOP_TRAINER__GROUP_ID": f"{env.prefix}-trainer",
        "ALLOOP_TRAINER__MIN_NEW_LABELS": "24",
        "ALLOOP_TRAINER__MAX_WAIT_S": "600",
    }

    # A multi-label seed model from the first fold; its label sets join the label store, and
    # fold 3 is the owner's evaluation file: the frozen test set, scored at once.
    held = utterances(3)
    seeded = env.alloop(
        "train",
        "--data",
        str(write(tmp_path / "seed.jsonl", seeds)),
        "--test",
        str(write(tmp_path / "test.jsonl", held)),
        "--iterations",
        "1",
        extra=config,
    )
    assert seeded.returncode == 0, seeded.stderr
    assert "registered v0001 (promoted)" in seeded.stdout
    assert f"scored on the frozen test set: {len(held)} documents {{'test-file': {len(held)}}}" in (
        seeded.stdout
    )

    api = workers(["api"], "api", **config).start()
    labeler = workers(["worker", "labeler", "--no-vectors"], "labeler", **config).start()
    trainer = workers(["worker", "trainer"], "trainer", **config).start()
    scorer = workers(["worker", "scorer"], "scorer", **config).start()
    for process in (labeler, trainer, scorer):
        process.wait_for("assigned partitions", timeout=180)
    api.wait_for("Application startup complete", timeout=120)
    ingested = env.alloop(
        "ingest", str(write(tmp_path / "stream.jsonl", stream, with_labels=False)), extra=config
    )
    assert ingested.returncode == 0, ingested.stderr

    # Every utterance is tagged with the labels that apply, by the multi-label v0001.
    tagged = [
        decode(r.value, TaggedDocument)
        for r in read_topic(env.broker, env.tagged, lambda rs: len(rs) >= len(stream), 240)
    ]
    assert {t.id for t in tagged} == set(gold)
    assert all(t.labels is not None and t.model_version == "v0001" for t in tagged)
    assert all(set(t.probabilities) == set(INTENTS) for t in tagged)
    assert any(len(t.labels or ()) > 1 for t in tagged)  # some utterance has two intents

    # The queue: one multi-label question; suggestions are label lists by v0001.
    with owner_client(argilla.url, creds.owner_api_key) as http:
        dataset = wait_for_dataset(http, f"{env.prefix}-classification")
        records = wait_for_records(http, dataset, 24)  # the dataset is complete by then
        [question] = http.get(f"/api/v1/datasets/{dataset}/questions").json()["items"]
        assert question["settings"]["type"] == "multi_label_selection"
        assert {o["value"] for o in question["settings"]["options"]} == set(INTENTS)
    suggestions = [s for r in records for s in r.get("suggestions") or []]
    assert suggestions and all(isinstance(s["value"], list) for s in suggestions)
    assert {s["agent"] for s in suggestions} == {"v0001"}

    answered = env.alloop(
        "annotate", "--oracle", str(write(tmp_path / "gold.jsonl", stream)), extra=config
    )
    assert answered.returncode == 0 and "answered 24 record(s)" in answered.stdout, (
        answered.stdout + answered.stderr
    )

    # Each answer arrives as a label set, through the webhook, once per response.
    events = [
        decode(r.value, LabelEvent)
        for r in read_topic(
            env.broker,
            f"{env.prefix}.labels",
            lambda rs: len({decode(r.value, LabelEvent).response_id for r in rs}) >= 24,
            timeout=180,
            settle=3,
        )
    ]
    assert len({e.response_id for e in events}) == 24
    assert all(e.labels == gold[e.id] and e.label is None for e in events)
    store = LabelStore(env.home / "labels" / "labels.db")
    assert {e.response_id for e in events} <= {a.response_id for a in store.answers()}

    # The trainer's round makes a multi-label v0002, scored label by label against v0001.
    trainer.wait_for('"version": "v0002"', timeout=300)
    registry = ModelRegistry(env.registry)
    metrics = json.loads((registry.path("v0002") / "metrics.json").read_text())
    assert metrics["evaluation"]["multi_label"] and metrics["evaluation"]["confusion"] == []
    assert metrics["evaluation"]["test_origins"] == {"test-file": len(held)}
    assert metrics["gate"]["baseline"] == "v0001"  # judged against the serving seed model
    seed_metrics = registry.card("v0001").metrics or {}
    assert seed_metrics["evaluation"]["multi_label"]
    assert seed_metrics["test_set"] == metrics["test_set"]  # both on the same documents
    assert registry.card("v0002").counts["train"] > registry.card("v0001").counts["train"]

    base = f"http://127.0.0.1:{port}"
    delta = httpx.get(f"{base}/v1/evaluations/deltas", params={"head": "v0002"}, timeout=30)
    assert delta.status_code == 200, delta.text
    body = delta.json()
    assert (body["base"], body["head"]) == ("v0001", "v0002")
    assert {m["label"] for m in body["per_label"]} <= set(INTENTS) and body["per_label"]
    answer = httpx.post(
        f"{base}/v1/classify", json={"text": "I lost my card, please block it"}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    [result] = answer.json()["results"]
    assert isinstance(result["labels"], list) and result["model_version"] in {"v0001", "v0002"}


def wait_for_dataset(http: httpx.Client, name: str, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for dataset in http.get("/api/v1/me/datasets").json()["items"]:
            if dataset["name"] == name:
                return str(dataset["id"])
        time.sleep(1)
    raise AssertionError(f"no Argilla dataset {name}")


def wait_for_records(
    http: httpx.Client, dataset: str, count: int, timeout: float = 180
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    records: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = http.post(
            f"/api/v1/datasets/{dataset}/records/search",
            params={"limit": 1000, "include": ["suggestions"]},
            json={},
        ).json()
        records = [item["record"] for item in found["items"]]
        if len(records) >= count:
            return records
        time.sleep(1)
    raise AssertionError(f"{len(records)} records in Argilla, expected {count}")
