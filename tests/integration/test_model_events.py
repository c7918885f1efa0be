"""Promotions made by hand are announced on the models topic, as the trainer's are."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from loop.classification.base import ClassifierConfig
from loop.messages import Document, ModelEvent, TaggedDocument, decode
from loop.registry import ModelRegistry
from loop.testing.classifier import KeywordFactory
from stack.local import free_port
from tests.integration.conftest import Env, WorkerProcess, read_topic

pytestmark = pytest.mark.integration


def keyword_versions(env: Env) -> ModelRegistry:
    """v0001 (promoted) and v0002, keyword models that tag differently."""
    registry = ModelRegistry(env.registry)
    for words in (["soar", "crash"], ["rally", "plunge"]):
        model = KeywordFactory().train(words, ["up", "down"], ClassifierConfig())
        registry.publish(model.save, labels=model.labels, kind="keywords")
    registry.promote("v0001")
    return registry


def test_cli_promotion_and_rollback_publish_model_events(env: Env) -> None:
    registry = keyword_versions(env)
    topic = {"ALLOOP_KAFKA__TOPICS__MODELS": f"{env.prefix}.models"}

    promoted = env.alloop("models", "promote", "v0002", extra=topic)
    assert promoted.returncode == 0 and "promoted v0002" in promoted.stdout, promoted.stderr
    rolled = env.alloop("models", "rollback", extra=topic)
    assert rolled.returncode == 0 and "note:" not in rolled.stderr, rolled.stderr

    events = [
        decode(r.value, ModelEvent)
        for r in read_topic(env.broker, f"{env.prefix}.models", lambda found: len(found) >= 2)
    ]
    # Keyed by version, so the two events may sit in different partitions: no order between.
    assert {(e.event, e.version, e.previous) for e in events} == {
        ("promoted", "v0002", "v0001"),
        ("rolled_back", "v0001", "v0002"),
    }
    assert registry.promoted() == "v0001"


def test_api_promotion_publishes_a_model_event(
    env: Env, workers: Callable[..., WorkerProcess]
) -> None:
    keyword_versions(env)
    port = free_port()
    api = workers(
        ["api"],
        "api",
        ALLOOP_API__PORT=str(port),
        ALLOOP_API__KEYS="k",
        ALLOOP_KAFKA__TOPICS__MODELS=f"{env.prefix}.models",
    ).start()
    api.wait_for("Application startup complete", timeout=120)
    answer = httpx.post(
        f"http://127.0.0.1:{port}/v1/models/v0002/promote", headers={"X-API-Key": "k"}, timeout=30
    )
    assert answer.status_code == 200 and answer.json()["served"] == "v0002", answer.text
    (record,) = read_topic(env.broker, f"{env.prefix}.models", lambda found: bool(found), settle=2)
    event = decode(record.value, ModelEvent)
    assert (event.event, event.version, event.previous) == ("promoted", "v0002", "v0001")


# The registry poll is ten minutes away: only the event can make the reload this quick.
POLL_LATER = {"ALLOOP_SCORER__RELOAD_CHECK_S": "600", "ALLOOP_API__RELOAD_CHECK_S": "600"}
REACTED_WITHIN_S = 30


@pytest.mark.slow
def test_a_promotion_event_makes_a_running_scorer_serve_the_version_before_its_poll(
    env: Env, workers: Callable[..., WorkerProcess]
) -> None:
    keyword_versions(env)
    scorer = workers(["worker", "scorer", "--worker-id", "s1"], "scorer", **POLL_LATER).start()
    scorer.wait_for("assigned partitions")
    scorer.wait_for(f"listening to {env.prefix}.models")

    promoted = env.alloop("models", "promote", "v0002")
    assert promoted.returncode == 0 and "note:" not in promoted.stderr, promoted.stderr
    scorer.wait_for("now serving model v0002", timeout=REACTED_WITHIN_S)

    docs = [Document(id=f"d-{i}", text=f"stocks rally {i}") for i in range(5)]
    env.produce(docs)
    tagged = [
        decode(r.value, TaggedDocument)
        for r in read_topic(env.broker, env.tagged, lambda found: len(found) >= len(docs))
    ]
    assert {t.model_version for t in tagged} == {"v0002"}

    rolled = env.alloop("models", "rollback")
    assert rolled.returncode == 0, rolled.stderr
    scorer.wait_for("now serving model v0001", timeout=REACTED_WITHIN_S)
    assert scorer.stop() == 0


@pytest.mark.slow
def test_a_promotion_event_makes_a_running_api_serve_the_version_before_its_poll(
    env: Env, workers: Callable[..., WorkerProcess]
) -> None:
    keyword_versions(env)
    port = free_port()
    api = workers(
        ["api"], "api", ALLOOP_API__PORT=str(port), ALLOOP_API__KEYS="k", **POLL_LATER
    ).start()
    api.wait_for("Application startup complete", timeout=120)
    api.wait_for(f"listening to {env.prefix}.models")

    promoted = env.alloop("models", "promote", "v0002")
    assert promoted.returncode == 0 and "note:" not in promoted.stderr, promoted.stderr
    deadline = time.monotonic() + REACTED_WITHIN_S
    served = None
    while time.monotonic() < deadline and served != "v0002":
        served = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).json()["model_version"]
        time.sleep(0.2)
    assert served == "v0002", api.text()[-3000:]
