"""The trainer on the real broker: labels in, a store that loses and duplicates nothing, rounds
in their own process, promotion, model events; a kill mid-stream loses no label."""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest
from kafka import KafkaProducer

from loop.labels import LabelStore
from loop.messages import LabelEvent, ModelEvent, decode, encode
from loop.registry import ModelRegistry
from tests.integration.conftest import Env, WorkerProcess, read_topic

pytestmark = pytest.mark.integration

WORDS = {"up": ["soar", "rally", "gain", "jump"], "down": ["crash", "plunge", "drop", "slide"]}


def answers(start: int, count: int) -> list[LabelEvent]:
    events = []
    for i in range(start, start + count):
        label = "up" if i % 2 else "down"
        events.append(
            LabelEvent(
                id=f"doc-{i}",
                text=f"shares {WORDS[label][i % 4]} on news {i}",
                label=label,
                response_id=f"resp-{i}",
                origin="evaluation" if i % 5 == 0 else "uncertain",
            )
        )
    return events


def send(env: Env, events: list[LabelEvent], poison: bool = False) -> None:
    producer = KafkaProducer(bootstrap_servers=env.broker, acks="all")
    topic = f"{env.prefix}.labels"
    for event in events:
        producer.send(topic, key=event.id.encode(), value=encode(event))
    if poison:
        producer.send(topic, key=b"bad", value=b'{"schema": "label", "id": 3}')
    producer.flush()
    producer.close()


def trainer_env(env: Env) -> dict[str, str]:
    return {
        "ALLOOP_TRAINER__GROUP_ID": f"{env.prefix}-trainer",
        "ALLOOP_TRAINER__MODEL_KIND": "keywords",
        "ALLOOP_TRAINER__MIN_NEW_LABELS": "40",
        "ALLOOP_TRAINER__MAX_WAIT_S": "3",
        "ALLOOP_TRAINER__MIN_TEST_SIZE": "10",
    }


def never_retrain(env: Env) -> dict[str, str]:
    """A trainer that stores answers and starts no round."""
    return {
        **trainer_env(env),
        "ALLOOP_TRAINER__MIN_NEW_LABELS": "100000",
        "ALLOOP_TRAINER__MAX_WAIT_S": "100000",
    }


def test_labels_become_a_promoted_version_with_events(
    env: Env, workers: Callable[..., WorkerProcess]
) -> None:
    trainer = workers(["worker", "trainer"], "trainer", **trainer_env(env)).start()
    trainer.wait_for("assigned partitions")
    batch = answers(0, 60)
    send(env, batch + batch[:10], poison=True)  # ten re-deliveries and one broken message

    trainer.wait_for("round: ", timeout=180)
    registry = ModelRegistry(env.registry)
    assert registry.promoted() == "v0001"
    card = registry.card("v0001")
    assert (card.counts["train"], card.counts["test"]) == (48, 12)
    store = LabelStore(env.home / "labels" / "labels.db")
    assert len(store) == 60
    assert len({e.response_id for e in store.answers()}) == 60

    events = read_topic(env.broker, f"{env.prefix}.models", lambda r: len(r) >= 2)
    kinds = [(e.event, e.version) for e in (decode(r.value, ModelEvent) for r in events)]
    assert kinds == [("registered", "v0001"), ("promoted", "v0001")]
    dead = read_topic(env.broker, f"{env.prefix}.labels.dlq", lambda r: len(r) >= 1)
    assert b"invalid label" in dict(dead[0].headers)["alloop.error"]
    assert trainer.stop() == 0


def test_a_killed_trainer_loses_and_duplicates_no_label(
    env: Env, workers: Callable[..., WorkerProcess]
) -> None:
    extra = never_retrain(env)
    first = workers(["worker", "trainer"], "trainer-1", **extra).start()
    first.wait_for("assigned partitions")
    send(env, answers(0, 200))
    first.wait_for("new, store holds")
    first.stop(signal.SIGKILL)
    send(env, answers(200, 100))
    second = workers(["worker", "trainer"], "trainer-2", **extra).start()
    path = env.home / "labels" / "labels.db"
    second.wait_for("store holds 300", timeout=120)
    assert second.stop() == 0
    store = LabelStore(path)
    assert {e.response_id for e in store.answers()} == {f"resp-{i}" for i in range(300)}
    assert len(store) == 300


def test_labels_stored_before_a_restart_start_a_round_without_a_new_label(
    env: Env, workers: Callable[..., WorkerProcess]
) -> None:
    first = workers(["worker", "trainer"], "trainer-1", **never_retrain(env)).start()
    first.wait_for("assigned partitions")
    send(env, answers(0, 30))
    first.wait_for("store holds 30")
    assert first.stop() == 0  # thirty answers stored, below its threshold: no round

    # restarted with a threshold of forty and a wait of three seconds; nobody labels anything
    second = workers(["worker", "trainer"], "trainer-2", **trainer_env(env)).start()
    second.wait_for("round: ", timeout=180)
    assert second.stop() == 0
    registry = ModelRegistry(env.registry)
    card = registry.card("v0001")
    assert card.counts["train"] + card.counts["test"] == 30
