"""The labeling half of the loop on real components: broker, Argilla, the labeler, the API's
webhook receiver, the oracle annotator. Processes are killed mid-way; nothing is lost, and no
Argilla record or label is duplicated."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka import KafkaProducer

from connectors.argilla.setup import ensure_webhook, owner_client, remove_webhook
from loop.labels import LabelStore
from loop.messages import Candidate, LabelEvent, decode, encode
from stack.argilla import LocalArgilla
from stack.local import free_port
from tests.integration.conftest import Env, WorkerProcess, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LABELS = ["Bearish", "Bullish", "Neutral"]


def candidates(start: int, count: int, score: float = 0.5) -> list[Candidate]:
    return [
        Candidate(
            id=f"doc-{i}",
            text=f"Ticker {i} moves ünïcode {i % 7}",
            model_version="v0001",
            strategy="least-confidence",
            score=score + i / 1000,
            reason="uncertain" if i % 5 else "random",
            probabilities={"Bearish": 0.2, "Bullish": 0.5, "Neutral": 0.3},
        )
        for i in range(start, start + count)
    ]


def gold_label(i: int) -> str:
    return LABELS[i % 3]


class Loop:
    def __init__(self, env: Env, argilla: LocalArgilla, tmp: Path) -> None:
        self.env, self.argilla, self.tmp = env, argilla, tmp
        creds = argilla.credentials
        self.http = owner_client(argilla.url, creds.owner_api_key)
        self.api_port = free_port()
        self.webhook_url = f"http://127.0.0.1:{self.api_port}/v1/argilla/webhooks"
        self.secret = ensure_webhook(self.http, self.webhook_url)
        self.vars = {
            "ALLOOP_ARGILLA__URL": argilla.url,
            "ALLOOP_ARGILLA__API_KEY": creds.owner_api_key,
            "ALLOOP_ARGILLA__ANNOTATOR_API_KEY": creds.annotator_api_key,
            "ALLOOP_ARGILLA__DATASET_PREFIX": env.prefix,
            "ALLOOP_ARGILLA__LABELS": ",".join(LABELS),
            "ALLOOP_ARGILLA__LABELER_GROUP_ID": f"{env.prefix}-labeler",
            "ALLOOP_ARGILLA__POLL_INTERVAL_S": "2",
            "ALLOOP_ARGILLA__POLL_GRACE_S": "0",
            "ALLOOP_ARGILLA__WEBHOOK_SECRET": self.secret,
            "ALLOOP_API__PORT": str(self.api_port),
        }
        self.gold = tmp / "gold.jsonl"
        self.gold.write_text(
            "".join(
                json.dumps(
                    {
                        "id": f"doc-{i}",
                        "text": f"Ticker {i} moves ünïcode {i % 7}",
                        "label": gold_label(i),
                    }
                )
                + "\n"
                for i in range(200)
            )
        )

    def close(self) -> None:
        remove_webhook(self.http, self.webhook_url)
        self.http.close()

    def send(self, items: list[Candidate]) -> None:
        producer = KafkaProducer(bootstrap_servers=self.env.broker, acks="all")
        for c in items:
            producer.send(f"{self.env.prefix}.candidates", key=c.id.encode(), value=encode(c))
        producer.flush()
        producer.close()

    def dataset_id(self) -> str | None:
        for dataset in self.http.get("/api/v1/me/datasets").json()["items"]:
            if dataset["name"] == f"{self.env.prefix}-classification":
                return str(dataset["id"])
        return None

    def records(self) -> list[dict[str, Any]]:
        dataset = self.dataset_id()
        if dataset is None:
            return []
        found = self.http.post(
            f"/api/v1/datasets/{dataset}/records/search",
            params={"limit": 1000, "include": ["responses", "suggestions", "vectors:embedding"]},
            json={},
        ).json()
        assert found["total"] == len(found["items"])
        return [item["record"] for item in found["items"]]

    def wait_records(self, count: int, timeout: float = 120) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.records()
            if len(found) >= count:
                return found
            time.sleep(0.5)
        raise AssertionError(f"{len(self.records())} records in Argilla, expected {count}")


@pytest.fixture
def loop(env: Env, argilla: LocalArgilla, tmp_path: Path) -> Iterator[Loop]:
    made = Loop(env, argilla, tmp_path)
    yield made
    made.close()


def test_candidates_reach_argilla_once_with_suggestions_metadata_and_vectors(
    loop: Loop, workers: Callable[..., WorkerProcess]
) -> None:
    labeler = workers(["worker", "labeler", "--vectors"], "labeler-1", **loop.vars).start()
    labeler.wait_for("assigned partitions", timeout=180)
    loop.send(candidates(0, 20))
    found = loop.wait_records(20)
    record = next(r for r in found if r["external_id"] == "doc-3")
    assert record["fields"]["text"] == "Ticker 3 moves ünïcode 3"
    assert (
        record["metadata"]["reason"] == "uncertain"
        and record["metadata"]["model_version"] == "v0001"
    )
    [suggestion] = record["suggestions"]
    assert (suggestion["value"], suggestion["agent"], suggestion["score"]) == (
        "Bullish",
        "v0001",
        0.5,
    )
    assert len(record["vectors"]["embedding"]) == 384

    labeler.stop(signal.SIGKILL)  # mid-stream: the batch may be replayed
    loop.send(candidates(0, 20) + candidates(20, 10))  # a replay and ten new
    workers(["worker", "labeler", "--vectors"], "labeler-2", **loop.vars).start()
    found = loop.wait_records(30)
    time.sleep(3)  # late duplicates would show up now
    ids = [r["external_id"] for r in loop.records()]
    assert len(ids) == len(set(ids)) == 30


def test_the_budget_keeps_the_best_and_never_takes_started_work(
    loop: Loop, workers: Callable[..., WorkerProcess]
) -> None:
    loop.vars["ALLOOP_ARGILLA__BUDGET"] = "10"
    labeler = workers(["worker", "labeler", "--no-vectors"], "labeler", **loop.vars).start()
    labeler.wait_for("assigned partitions", timeout=180)
    loop.send(candidates(0, 10, score=0.1))
    loop.wait_records(10)
    annotate = loop.env.alloop(
        "annotate", "--oracle", str(loop.gold), "--limit", "1", extra=loop.vars
    )
    assert annotate.returncode == 0, annotate.stderr
    started = [r["external_id"] for r in loop.records() if r["responses"]]
    assert len(started) == 1
    loop.send(candidates(100, 10, score=0.9))  # better than all of the pending ones
    labeler.wait_for("10 written, 9 replaced", timeout=60)
    ids = {r["external_id"] for r in loop.records()}
    assert ids == {f"doc-{i}" for i in range(100, 110)} | set(started)


def test_answers_come_back_once_through_webhooks_and_the_poll(
    loop: Loop, workers: Callable[..., WorkerProcess]
) -> None:
    api = workers(["api"], "api-1", **loop.vars).start()
    api.wait_for("Application startup complete", timeout=120)
    labeler = workers(["worker", "labeler", "--no-vectors"], "labeler", **loop.vars).start()
    labeler.wait_for("assigned partitions", timeout=180)
    loop.send(candidates(0, 30))
    loop.wait_records(30)

    first = loop.env.alloop(
        "annotate", "--oracle", str(loop.gold), "--limit", "15", extra=loop.vars
    )
    assert first.returncode == 0 and "answered 15" in first.stdout, first.stderr
    api.stop(signal.SIGKILL)  # the API is down: webhooks for the next answers fail
    second = loop.env.alloop("annotate", "--oracle", str(loop.gold), extra=loop.vars)
    assert "answered 15" in second.stdout, second.stderr
    labeler.stop(signal.SIGKILL)  # and the labeler restarts too
    workers(["worker", "labeler", "--no-vectors"], "labeler-2", **loop.vars).start()
    api_again = workers(["api"], "api-2", **loop.vars).start()

    topic = f"{loop.env.prefix}.labels"
    records = read_topic(
        loop.env.broker,
        topic,
        lambda r: len({decode(x.value, LabelEvent).response_id for x in r}) >= 30,
        timeout=180,
    )
    events = [decode(r.value, LabelEvent) for r in records]
    assert {e.id for e in events} == {f"doc-{i}" for i in range(30)}
    store = LabelStore(loop.tmp / "store.db")
    store.add(events)
    store.add(events)  # whatever was relayed twice changes nothing
    assert len(store) == 30
    assert {(r.id, r.label) for r in store.labelled()} == {
        (f"doc-{i}", gold_label(i)) for i in range(30)
    }
    assert {r.origin for r in store.labelled()} == {"uncertain", "random"}
    api_again.wait_for("Application startup complete", timeout=120)  # the poll may be quicker
    api_health = httpx.get(f"http://127.0.0.1:{loop.api_port}/health", timeout=5)
    assert api_health.status_code == 200


def test_a_candidate_argilla_refuses_is_dead_lettered_and_the_others_are_written(
    loop: Loop, workers: Callable[..., WorkerProcess]
) -> None:
    labeler = workers(["worker", "labeler", "--no-vectors"], "labeler", **loop.vars).start()
    labeler.wait_for("assigned partitions", timeout=180)
    good = candidates(0, 10)
    stranger = candidates(10, 1)[0].model_copy(
        update={"probabilities": {"Sideways": 0.7, "Bullish": 0.3}}  # not a label of the dataset
    )
    producer = KafkaProducer(bootstrap_servers=loop.env.broker, acks="all")
    for c in [*good[:5], stranger, *good[5:]]:
        key = None if c is stranger else c.id.encode()  # its key does not name it
        producer.send(f"{loop.env.prefix}.candidates", key=key, value=encode(c))
    producer.flush()
    producer.close()

    found = loop.wait_records(10)
    assert {r["external_id"] for r in found} == {c.id for c in good}
    dead = read_topic(
        loop.env.broker, f"{loop.env.prefix}.candidates.dlq", lambda rs: len(rs) >= 1, settle=2
    )
    assert [bytes(r.value) for r in dead] == [encode(stranger)]
    reason = dict(dead[0].headers)["alloop.error"].decode()
    assert reason.startswith("Argilla refused the record") and "Sideways" in reason, reason
    labeler.wait_for("1 refused")
    assert labeler.process is not None and labeler.process.poll() is None, "the labeler died"
