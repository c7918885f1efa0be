"""The trainer: consume ``labels``, keep the label store, retrain when enough arrived.

Each label event is added to the label store (idempotent by response id, fsynced) before its
offset is committed, so a crash loses no answer and a replay adds none twice. When enough new
labels have arrived (``trainer.min_new_labels``), or some have waited ``trainer.max_wait_s``,
a training round runs in a fresh process (``python -m workers.train_round``): it trains on
all agreed labels, evaluates on the frozen test set, registers the version and promotes it
when it passes the gate. Each task (the classifier's, and the entity task when enabled)
counts its own new labels and has its own rounds. Answers stored before a restart, and the
answers of a round that failed, are not forgotten: see :mod:`workers.round_schedule`. Scorers
and the API pick up a promotion by themselves; the trainer also announces each round's outcome
on the ``models`` topic.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from loop.labels import LabelStore
from loop.messages import LabelEvent, ModelEvent
from loop.registry import ModelRegistry
from loop.settings import Settings
from workers.bus import (
    LoopStats,
    Output,
    StopFlag,
    decode_all,
    ensure_topics,
    make_consumer,
    make_producer,
    run_loop,
    send_all,
)
from workers.round_schedule import Backlog, RetrainPolicy, RoundSchedule

logger = logging.getLogger(__name__)


class TrainerStatus(BaseModel):
    """The last round, for ``GET /v1/queue``; kept in ``$ALLOOP_HOME/trainer/status.json``."""

    finished_at: datetime
    duration_s: float
    version: str | None = None
    promoted: bool = False
    skipped: str | None = None
    error: str | None = None
    task: str = "classification"

    @staticmethod
    def path(home: Path, task: str = "classification") -> Path:
        name = "status.json" if task == "classification" else f"status-{task}.json"
        return home / "trainer" / name

    def save(self, home: Path) -> None:
        path = self.path(home, self.task)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.model_dump_json())
        os.replace(tmp, path)

    @classmethod
    def load(cls, home: Path, task: str = "classification") -> TrainerStatus | None:
        try:
            return cls.model_validate_json(cls.path(home, task).read_text())
        except (OSError, ValueError):
            return None


@dataclass
class LabelIntake:
    """Turns a batch of ``labels`` records into store entries; poison goes to the DLQ."""

    store: LabelStore
    worker_id: str
    added: int = 0
    per_task: Counter[str] = field(default_factory=Counter)

    def handle(self, records: list[Any]) -> list[Output]:
        pairs, outputs = decode_all(records, LabelEvent, self.worker_id)
        events = [event for _, event in pairs]
        fresh = self.store.add_new(events)  # fsynced before the offsets are committed
        added = len(fresh)
        self.added += added
        self.per_task.update(event.task for event in fresh)
        for event in fresh:
            for reason in event.rejected:
                logger.warning("document %s: span rejected, not trained on: %s", event.id, reason)
        if events:
            logger.info(
                "%d label event(s), %d new, store holds %d", len(events), added, len(self.store)
            )
        return outputs


def run_round(
    settings: Settings, timeout_s: float = 3600, task: str | None = None
) -> dict[str, Any]:
    """Run one training round in a fresh process; return what it printed (a JSON object)."""
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "workers.train_round",
            *(["--task", task] if task else []),
            *("--parent", str(os.getpid())),
        ],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, "ALLOOP_HOME": str(settings.home)},
        check=False,
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"the training round failed (exit {done.returncode}): {tail}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError("the training round printed no result")
    result: dict[str, Any] = json.loads(lines[-1])
    result["duration_s"] = round(time.monotonic() - started, 1)
    return result


def model_events(result: dict[str, Any]) -> list[ModelEvent]:
    """The events that announce a round's outcome."""
    version = result.get("version")
    if not version:
        return []
    events = [
        ModelEvent(event="registered", version=version, previous=result.get("promoted_before"))
    ]
    if result.get("promoted"):
        events.append(
            ModelEvent(event="promoted", version=version, previous=result.get("promoted_before"))
        )
    return events


def run(settings: Settings, servers: str, worker_id: str = "trainer") -> LoopStats:
    """Run the trainer until SIGTERM/SIGINT."""
    topics = settings.kafka.topics
    ensure_topics(
        servers, [topics.labels, topics.models, topics.dlq(topics.labels)], topics.partitions
    )
    store = LabelStore(
        settings.labels_path, settings.argilla.min_submitted, settings.argilla.min_agreement
    )
    intake = LabelIntake(store, worker_id)
    policies = {
        settings.trainer.task: RetrainPolicy(
            settings.trainer.min_new_labels, settings.trainer.max_wait_s
        ),
        **{
            task: RetrainPolicy(settings.entities.min_new_labels, settings.trainer.max_wait_s)
            for task in settings.entity_tasks
        },
    }
    stop = StopFlag().install()
    consumer = make_consumer(servers, settings.kafka, [topics.labels], settings.trainer.group_id)
    producer = make_producer(servers, settings.kafka)

    def between_batches() -> None:
        schedule.tick(intake.per_task)

    def train(task: str) -> bool:
        started = time.monotonic()
        try:
            result = run_round(settings, task=task)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            logger.error("%s; retrying in %.0fs", exc, settings.trainer.max_wait_s)
            TrainerStatus(
                finished_at=datetime.now(UTC),
                duration_s=round(time.monotonic() - started, 1),
                error=str(exc)[-500:],
                task=task,
            ).save(settings.home)
            return False
        TrainerStatus(
            finished_at=datetime.now(UTC),
            duration_s=result["duration_s"],
            version=result.get("version"),
            promoted=bool(result.get("promoted")),
            skipped=result.get("skipped"),
            task=task,
        ).save(settings.home)
        logger.info("round: %s", json.dumps(result))
        events = model_events(result)
        send_all(producer, [Output.of(topics.models, e) for e in events])
        return True

    registries = {
        settings.trainer.task: ModelRegistry(settings.registry_path),
        **{task: ModelRegistry(settings.entity_registry_path) for task in settings.entity_tasks},
    }
    schedule = RoundSchedule(
        policies,
        train,
        backlog=Backlog.of(store, registries),
        check_every_s=settings.trainer.check_interval_s,
    )

    logger.info(
        "trainer %s consuming %s, store %s (%d answers)",
        worker_id,
        topics.labels,
        store.path,
        len(store),
    )
    stats = LoopStats()
    try:
        run_loop(
            consumer,
            producer,
            intake.handle,
            stop,
            batch_size=256,
            max_wait_ms=1000,
            between_batches=between_batches,
            stats=stats,
            worker=worker_id,
        )
    finally:
        consumer.close()
        producer.close(timeout=10)
    return stats
