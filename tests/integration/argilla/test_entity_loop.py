"""The entity half of the loop on real components: broker, Argilla, scorer, labeler, API
webhooks, oracle, trainer, and the MiniLM tagger.

The first entity version learns from a few seed labels that name one currency pair (USDJPY).
A stream then brings NZDCAD, which nobody has labelled: the scorer routes it to Argilla as
``unseen`` with the pattern's span as the suggestion; the oracle answers with gold spans
(through Argilla's HTTP API, like a person); the trainer trains the next version, which tags
NZDCAD itself, and the delta the API serves shows FOREX improving.

The new pair shares no subword with USDJPY (``nz ##dc ##ad`` against ``usd ##j ##py``).
AUDJPY (``au ##d ##j ##py``) would not do: the first version tags ``AU`` as STOCK and
``DJPY`` as FOREX, which whole-token alignment makes ``AUDJPY`` FOREX, already right (it
tags NZDCAD as a STOCK).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka import KafkaProducer

from connectors.argilla.setup import ensure_webhook, owner_client, remove_webhook
from loop.labels import LabelStore
from loop.messages import Candidate, Document, EntityMention, LabelEvent, decode, encode
from loop.registry import ModelRegistry
from loop.training.split import in_evaluation_sample
from stack.argilla import LocalArgilla
from stack.local import free_port
from tests.integration.conftest import ROOT, Env, WorkerProcess, read_topic
from tests.messages import entity_candidate

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TYPES = ["STOCK", "CRYPTO", "FOREX"]
SEED_FOREX = ["{x} slips as the yen firms", "Traders buy {x} ahead of the data"]
SEED_STOCK = ["{x} beats estimates, shares up", "Selling {x} before earnings", "{x} hits a high"]
SEED_COIN = ["{x} rallies past resistance", "Whales accumulate {x} again", "{x} dumps overnight"]
NEW_PAIR = [
    "Sold some {x} today",
    "{x} jumps on risk appetite 🚀",
    "Long {x} into the close",
    "Is {x} topping out? Zürich desk thinks so",
]
NEW = "NZDCAD"
PROBE = f"Long {NEW} into the close"
FILLER = ["Quiet session for {x}", "{x} flat into the weekend", "Watching {x} closely"]


def example(doc_id: str, template: str, surface: str, label: str) -> dict[str, Any]:
    text = template.format(x=surface)
    start = text.index(surface)
    entity = {"label": label, "start": start, "end": start + len(surface)}
    return {"id": doc_id, "text": text, "metadata": {"entities": [entity]}}


def seeds() -> list[dict[str, Any]]:
    found = [example(f"seed-fx-{i}", t, "USDJPY", "FOREX") for i, t in enumerate(SEED_FOREX)]
    for name in ("$AAPL", "$TSLA", "$MSFT"):
        found += [example(f"seed-{name}-{i}", t, name, "STOCK") for i, t in enumerate(SEED_STOCK)]
    for name in ("BTC", "Bitcoin", "ETH"):
        found += [example(f"seed-{name}-{i}", t, name, "CRYPTO") for i, t in enumerate(SEED_COIN)]
    return found


EVALUATION_FRACTION = 0.2


def new_pair_ids() -> list[str]:
    """Ids of the new pair's documents: three the scorer draws for the evaluation sample (the
    frozen test set), five it does not (the draw is a hash of the id, so the test can choose
    them)."""
    ids = [f"pair-{i}" for i in range(500)]
    drawn = [i for i in ids if in_evaluation_sample(i, EVALUATION_FRACTION)]
    rest = [i for i in ids if not in_evaluation_sample(i, EVALUATION_FRACTION)]
    return drawn[:3] + rest[:5]


def stream() -> list[dict[str, Any]]:
    docs = [
        example(doc_id, NEW_PAIR[i % len(NEW_PAIR)], NEW, "FOREX")
        for i, doc_id in enumerate(new_pair_ids())
    ]
    # Enough documents after the new pair for selection rounds to go on (the evaluation
    # sample leaves the windows, and a round needs ALLOOP_SCORER__ROUND_SIZE new documents).
    fillers = [("$AAPL", "STOCK"), ("BTC", "CRYPTO"), ("$TSLA", "STOCK"), ("ETH", "CRYPTO")]
    fillers += [("$MSFT", "STOCK"), ("Bitcoin", "CRYPTO")]
    for i, (name, label) in enumerate(fillers):
        docs += [example(f"fill-{i}-{j}", t, name, label) for j, t in enumerate(FILLER)]
    return docs


def label_events(docs: list[dict[str, Any]]) -> list[LabelEvent]:
    events = []
    for doc in docs:
        text = doc["text"]
        spans = [
            EntityMention(
                label=e["label"], start=e["start"], end=e["end"], text=text[e["start"] : e["end"]]
            )
            for e in doc["metadata"]["entities"]
        ]
        events.append(
            LabelEvent(
                id=doc["id"],
                text=text,
                task="entities",
                spans=spans,
                response_id=f"seed-{doc['id']}",
                origin="seed",
            )
        )
    return events


class EntityLoop:
    def __init__(self, env: Env, argilla: LocalArgilla, tmp: Path) -> None:
        self.env, self.tmp = env, tmp
        creds = argilla.credentials
        self.http = owner_client(argilla.url, creds.owner_api_key)
        self.api_port = free_port()
        self.webhook_url = f"http://127.0.0.1:{self.api_port}/v1/argilla/webhooks"
        secret = ensure_webhook(self.http, self.webhook_url)
        self.vars = {
            "ALLOOP_ARGILLA__URL": argilla.url,
            "ALLOOP_ARGILLA__API_KEY": creds.owner_api_key,
            "ALLOOP_ARGILLA__ANNOTATOR_API_KEY": creds.annotator_api_key,
            "ALLOOP_ARGILLA__DATASET_PREFIX": env.prefix,
            "ALLOOP_ARGILLA__LABELS": "Bearish,Bullish,Neutral",
            "ALLOOP_ARGILLA__LABELER_GROUP_ID": f"{env.prefix}-labeler",
            "ALLOOP_ARGILLA__POLL_INTERVAL_S": "2",
            "ALLOOP_ARGILLA__POLL_GRACE_S": "0",
            "ALLOOP_ARGILLA__WEBHOOK_SECRET": secret,
            "ALLOOP_API__PORT": str(self.api_port),
            "ALLOOP_API__RELOAD_CHECK_S": "0.5",
            "ALLOOP_ENTITIES__ENABLED": "true",
            "ALLOOP_SCORER__ROUND_SIZE": "4",
            "ALLOOP_SCORER__EVALUATION_FRACTION": str(EVALUATION_FRACTION),
            # The version alone is served (and scored): with the gazetteer beside it, the
            # new pair would be tagged right before anyone labelled it.
            "ALLOOP_ENTITIES__MERGE": "off",
            "ALLOOP_TRAINER__MIN_TEST_SIZE": "3",
            "ALLOOP_SCORER__BATCH_SIZE": "4",
            "ALLOOP_TRAINER__GROUP_ID": f"{env.prefix}-trainer",
            "ALLOOP_TRAINER__MAX_WAIT_S": "600",
        }
        self.gold = tmp / "gold.jsonl"
        self.gold.write_text("".join(json.dumps(d) + "\n" for d in stream()))

    def close(self) -> None:
        remove_webhook(self.http, self.webhook_url)
        self.http.close()

    def train_round(self) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "workers.train_round", "--task", "entities"],
            env={**os.environ, **self.env.vars(), **self.vars},
            capture_output=True,
            text=True,
            timeout=600,
            cwd=ROOT,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result

    def records(self) -> list[dict[str, Any]]:
        for dataset in self.http.get("/api/v1/me/datasets").json()["items"]:
            if dataset["name"] == f"{self.env.prefix}-entities":
                found = self.http.post(
                    f"/api/v1/datasets/{dataset['id']}/records/search",
                    params={"limit": 1000, "include": ["responses", "suggestions"]},
                    json={},
                ).json()
                return [item["record"] for item in found["items"]]
        return []

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = httpx.request(
            method, f"http://127.0.0.1:{self.api_port}{path}", timeout=30, **kwargs
        )
        assert answer.status_code == 200, answer.text
        return answer.json()


@pytest.fixture
def entity_loop(env: Env, argilla: LocalArgilla, tmp_path: Path) -> Iterator[EntityLoop]:
    made = EntityLoop(env, argilla, tmp_path)
    yield made
    made.close()


def wait(what: str, check: Callable[[], Any], timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_an_unseen_pair_is_routed_labelled_learned_and_shows_in_the_delta(
    entity_loop: EntityLoop, workers: Callable[..., WorkerProcess]
) -> None:
    loop, env = entity_loop, entity_loop.env
    store = LabelStore(env.home / "labels" / "labels.db")
    store.add(label_events(seeds()))
    first = loop.train_round()
    # No test set yet (the seeds are all trained on): nothing to decide on, so v0001 is not
    # promoted; promote it by hand, as an owner who trusts the seed file would.
    assert (first["version"], first["promoted"]) == ("v0001", False), first
    assert "too few to decide" in first["reasons"][0]
    ModelRegistry(env.registry / "entities").promote("v0001")

    api = workers(["api"], "api", **loop.vars).start()
    api.wait_for("Application startup complete", timeout=120)
    labeler = workers(["worker", "labeler", "--no-vectors"], "labeler", **loop.vars).start()
    scorer = workers(["worker", "scorer"], "scorer", **loop.vars).start()
    labeler.wait_for("assigned partitions", timeout=180)
    scorer.wait_for("assigned partitions", timeout=180)
    before = loop.api("POST", "/v1/entities", json={"text": PROBE})
    assert before["entity_version"] == "v0001"

    producer = KafkaProducer(bootstrap_servers=env.broker, acks="all")
    docs = stream()
    for doc in docs:
        value = encode(Document(id=doc["id"], text=doc["text"]))
        producer.send(env.raw, key=doc["id"].encode(), value=value)
    producer.flush()
    producer.close()

    pair_ids = set(new_pair_ids())

    def all_routed() -> list[dict[str, Any]] | None:
        found = [r for r in loop.records() if r["external_id"] in pair_ids]
        return found if len(found) == len(pair_ids) else None

    routed = wait(f"the {NEW} documents in Argilla", all_routed)
    drawn = {r["external_id"] for r in routed if r["metadata"]["reason"] == "evaluation"}
    assert drawn == set(new_pair_ids()[:3])  # the evaluation sample, whatever the selection did
    unseen = [r for r in routed if r["metadata"]["reason"] == "unseen"]
    assert unseen, [r["metadata"] for r in routed]
    record = unseen[0]
    text = record["fields"]["text"]
    (suggestion,) = record["suggestions"]
    spans = [(s["label"], text[s["start"] : s["end"]]) for s in suggestion["value"]]
    assert ("FOREX", NEW) in spans, suggestion
    assert record["metadata"]["model_version"] == "v0001"

    answered = env.alloop("annotate", "--oracle", str(loop.gold), extra=loop.vars)
    assert answered.returncode == 0, answered.stderr[-2000:]
    count = int(answered.stdout.split("answered ")[1].split()[0])
    assert count >= len(pair_ids), answered.stdout

    trainer_vars = {**loop.vars, "ALLOOP_ENTITIES__MIN_NEW_LABELS": str(count)}
    trainer = workers(["worker", "trainer"], "trainer", **trainer_vars).start()
    trainer.wait_for('"version": "v0002"', timeout=600)

    def served_v2() -> dict[str, Any] | None:
        body: dict[str, Any] = loop.api("POST", "/v1/entities", json={"text": PROBE})
        return body if body["entity_version"] == "v0002" else None

    after = wait("v0002 served by the API", served_v2, timeout=60)
    tags = [(e["label"], e["text"], e["source"]) for e in after["results"][0]["entities"]]
    assert ("FOREX", NEW, "model") in tags, after

    delta = loop.api("GET", "/v1/evaluations/deltas", params={"task": "entities"})
    assert (delta["base"], delta["head"]) == ("v0001", "v0002")
    forex = next(d for d in delta["per_type"] if d["label"] == "FOREX")
    assert forex["delta"] > 0, forex
    assert {f["id"] for f in delta["fixed"]} & pair_ids, delta["fixed"]
    evaluation = loop.api("GET", "/v1/evaluations/v0002", params={"task": "entities"})
    drawn_ids = {d["id"] for d in stream() if in_evaluation_sample(d["id"], EVALUATION_FRACTION)}
    assert evaluation["test_origins"] == {"evaluation": len(drawn_ids)}  # the sample only
    assert evaluation["test_size"] == len(drawn_ids)
    assert (
        evaluation["per_type"]["FOREX"]["support"] == 3
    )  # the three drawn documents of the new pair


def start_api_and_labeler(
    loop: EntityLoop, workers: Callable[..., WorkerProcess]
) -> tuple[WorkerProcess, WorkerProcess]:
    api = workers(["api"], "api", **loop.vars).start()
    api.wait_for("Application startup complete", timeout=120)
    labeler = workers(["worker", "labeler", "--no-vectors"], "labeler", **loop.vars).start()
    labeler.wait_for("assigned partitions", timeout=180)
    return api, labeler


def send_candidate(env: Env, candidate: Candidate) -> None:
    producer = KafkaProducer(bootstrap_servers=env.broker, acks="all")
    producer.send(f"{env.prefix}.candidates", key=candidate.id.encode(), value=encode(candidate))
    producer.flush()
    producer.close()


def test_span_offsets_survive_the_round_trip_through_argilla(
    entity_loop: EntityLoop, workers: Callable[..., WorkerProcess]
) -> None:
    loop, env = entity_loop, entity_loop.env
    text = "AUDJPY ☕️ Zürich 🚀 desk: buy the dip in BTC"
    gold = [
        EntityMention(label="FOREX", start=0, end=6, text="AUDJPY"),
        EntityMention(label="CRYPTO", start=len(text) - 3, end=len(text), text="BTC"),
    ]
    loop.gold.write_text(
        json.dumps(
            {
                "id": "edge-1",
                "text": text,
                "metadata": {
                    "entities": [{"label": m.label, "start": m.start, "end": m.end} for m in gold]
                },
            }
        )
        + "\n"
    )
    start_api_and_labeler(loop, workers)
    candidate = entity_candidate(
        "edge-1", text, spans=[m.model_copy(update={"score": 0.9}) for m in gold]
    )
    send_candidate(env, candidate)

    (record,) = wait("the record in Argilla", loop.records)
    assert record["fields"]["text"] == text
    (suggestion,) = record["suggestions"]
    assert [(s["label"], s["start"], s["end"]) for s in suggestion["value"]] == [
        (m.label, m.start, m.end) for m in gold
    ]
    assert suggestion["score"] == [0.9, 0.9]

    answered = env.alloop("annotate", "--oracle", str(loop.gold), extra=loop.vars)
    assert "answered 1 " in answered.stdout, answered.stdout + answered.stderr[-2000:]
    (event,) = {
        e.response_id: e
        for e in (
            decode(r.value, LabelEvent)
            for r in read_topic(env.broker, f"{env.prefix}.labels", lambda found: bool(found))
        )
    }.values()
    assert event.id == "edge-1" and event.task == "entities" and event.rejected == []
    assert event.spans == gold
    assert [text[m.start : m.end] for m in event.spans] == ["AUDJPY", "BTC"]


def test_an_entity_record_discarded_without_spans_comes_back_as_a_discarded_answer(
    entity_loop: EntityLoop, argilla: LocalArgilla, workers: Callable[..., WorkerProcess]
) -> None:
    loop, env = entity_loop, entity_loop.env
    api, labeler = start_api_and_labeler(loop, workers)
    candidate = entity_candidate("junk-1", "nothing to see here", score=0.5, reason="random")
    send_candidate(env, candidate)
    (record,) = wait("the record in Argilla", loop.records)

    annotator = httpx.post(  # what an annotator's "Discard" sends: no values at all
        f"{argilla.url}/api/v1/records/{record['id']}/responses",
        headers={"X-Argilla-Api-Key": argilla.credentials.annotator_api_key},
        json={"status": "discarded"},
        timeout=30,
    )
    assert annotator.status_code == 201, annotator.text

    events = read_topic(env.broker, f"{env.prefix}.labels", lambda found: len(found) >= 2)
    answers = [decode(r.value, LabelEvent) for r in events]
    assert {(e.id, e.task, e.status, e.spans) for e in answers} == {
        ("junk-1", "entities", "discarded", None)
    }
    api.wait_for("discarded None on document junk-1")  # the webhook, not only the poll
    labeler.wait_for("answers poll: 1 answer(s)")
    assert labeler.process is not None and labeler.process.poll() is None, "the labeler died"
    assert "failed unexpectedly" not in api.text()
