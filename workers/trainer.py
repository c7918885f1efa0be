"""The trainer: consume ``labels``, keep the label store, retrain when enough arrived.

Each label event is added to the label store (idempotent by response id, fsynced) before its
offset is committed, so a crash loses no answer and a replay adds none twice. When enough new
labels have arrived (``trainer.min_new_labels``), or some have waited ``trainer.max_wait_s``,
a training round runs in a fresh process (``python -m workers.train_round``): it trains on
all agreed labels, evaluates on the frozen test set, registers the version and promotes it
when it passes the gate. Each task (the classifier's, and the entity task when enabled)
counts its own new labels and has its own rounds. Answers stored before a restart, and the
answers of a round that failed, are not forgotten: see :mod:`workers.round_schedule`. The
trainer announces each round's outcome on the ``models`` topic, where scorers and the API hear
it and reload at once; they also poll the registry, so a lost announcement delays nothing long.
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
from typing import Any

from pydantic import ValidationError

from connectors.kafka import LoopStats, send_all, serve, start_worker, worker_clients
from connectors.outputs import Output, decode_all
from connectors.retry import retry_outages
from loop.labels import LabelStore
from loop.messages import LabelEvent, ModelEvent
from loop.registry import ModelRegistry
from loop.settings import Settings
from loop.training.rounds import RoundResult
from loop.training.status import TrainerStatus
from workers.round_schedule import Backlog, RetrainPolicy, RoundSchedule

logger = logging.getLogger(__name__)


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
) -> tuple[RoundResult, float]:
    """Run one training round in a fresh process; return the result it printed and how many
    seconds it took."""
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
    try:
        return RoundResult.from_json(lines[-1]), round(time.monotonic() - started, 1)
    except ValidationError as exc:
        raise RuntimeError(f"the training round printed no readable result: {exc}") from None


def model_events(result: RoundResult) -> list[ModelEvent]:
    """The events that announce a round's outcome."""
    if not result.version:
        return []
    events = [
        ModelEvent(event="registered", version=result.version, previous=result.promoted_before)
    ]
    if result.promoted:
        events.append(
            ModelEvent(event="promoted", version=result.version, previous=result.promoted_before)
        )
    return events


def run(settings: Settings, servers: str, worker_id: str = "trainer") -> LoopStats:
    """Run the trainer until SIGTERM/SIGINT."""
    topics = settings.kafka.topics
    stop, backoff = start_worker(
        settings, servers, [topics.labels, topics.models, topics.dlq(topics.labels)]
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
    consumer, producer = worker_clients(settings, servers, topics.labels, settings.trainer.group_id)

    def between_batches() -> None:
        schedule.tick(intake.per_task)

    def train(task: str) -> bool:
        started = time.monotonic()
        try:
            result, duration_s = run_round(settings, task=task)
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
            duration_s=duration_s,
            version=result.version,
            promoted=result.promoted,
            skipped=result.skipped,
            task=task,
        ).save(settings.home)
        logger.info(
            "round: %s", json.dumps({"task": task, **result.to_dict(), "duration_s": duration_s})
        )
        events = model_events(result)
        outputs = [Output.of(topics.models, e) for e in events]
        # The round is done: only its announcement waits for the broker, never a second round.
        retry_outages(lambda: send_all(producer, outputs), stop, backoff, "announcing a round")
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
    return serve(
        consumer,
        producer,
        intake.handle,
        stop,
        batch_size=256,
        max_wait_ms=1000,
        between_batches=between_batches,
        worker=worker_id,
        backoff=backoff,
        commit_delay_s=settings.kafka.commit_delay_s,
    )
