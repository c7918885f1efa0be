"""The labeler: consume ``candidates``, keep one Argilla dataset per task up to date.

Each candidate becomes an Argilla record whose id (``external_id``) is the document id, so a
replay or a re-scored candidate updates its record instead of adding one. The record carries
the model's prediction as a suggestion (score, and the model version as agent), metadata an
annotator can filter and sort on (selection score, strategy, reason, model version, task) and,
when enabled, the MiniLM embedding of the text as a vector for "find similar".

The budget (``argilla.budget``) caps the records waiting in a dataset; when it is full, a
better candidate replaces the weakest pending record that nobody has started
(:mod:`loop.selection.budget`). Offsets are committed only after Argilla accepted the batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import argilla as rg
import httpx

from connectors.argilla.answers import poll
from connectors.argilla.datasets import ArgillaQueue, record_for, refused
from connectors.kafka import LoopStats, send_all, serve, start_worker, worker_clients
from connectors.outputs import Output, dead_letter, decode_all, fit_outputs, where
from loop.embeddings.backbone import PackagedEncoder
from loop.messages import Candidate
from loop.selection.budget import Offer, plan
from loop.settings import Settings
from loop.training.split import EVALUATION
from stack.discovery import argilla_address

logger = logging.getLogger(__name__)


class Embedder:
    """MiniLM sentence embeddings for the "find similar" vectors, rounded for Argilla."""

    dimensions = PackagedEncoder.dimensions

    def __init__(self) -> None:
        self._encode = PackagedEncoder()

    def __call__(self, texts: Sequence[str]) -> list[list[float]]:
        return [[round(float(x), 6) for x in row] for row in self._encode(texts)]


@dataclass
class Labeler:
    """Turns a batch of candidate records into Argilla writes; poison goes to the DLQ."""

    queue: ArgillaQueue
    budget: int
    worker_id: str
    embed: Embedder | None = None
    multi_label: bool = False  # what the classification datasets ask for
    written: int = 0
    removed: int = 0

    def handle(self, records: list[Any]) -> list[Output]:
        decoded, outputs = decode_all(records, Candidate, self.worker_id)
        by_task: dict[str, dict[str, tuple[Any, Candidate]]] = {}
        for record, candidate in decoded:
            if candidate.probabilities and candidate.multi_label != self.multi_label:
                # its suggestion would not fit the dataset's question: say so, keep going
                outputs.append(dead_letter(record, self._misfit(candidate), self.worker_id))
                continue
            # last one wins
            by_task.setdefault(candidate.task, {})[candidate.id] = (record, candidate)
        for task, candidates in by_task.items():
            outputs.extend(self._place(task, list(candidates.values())))
        return outputs

    def _misfit(self, candidate: Candidate) -> str:
        made, asked = (
            ("multi-label", "single-label")
            if candidate.multi_label
            else (
                "single-label",
                "multi-label",
            )
        )
        return (
            f"a {made} candidate (model {candidate.model_version}) for a {asked} Argilla "
            "dataset: set ALLOOP_CLASSIFICATION__MULTI_LABEL alike for the scorer, the labeler "
            "and the trainer"
        )

    def _place(self, task: str, entries: list[tuple[Any, Candidate]]) -> list[Output]:
        """Write what the budget lets in; dead letters for the records Argilla refuses."""
        pending = self.queue.pending(task)
        decision = plan(
            [p for p, _ in pending],
            [Offer(c.id, c.score, c.reason == EVALUATION) for _, c in entries],
            self.budget,
        )
        if decision.remove:
            doomed = [server_id for p, server_id in pending if p.id in set(decision.remove)]
            self.queue.remove(task, doomed)
            self.removed += len(doomed)
        chosen = [(r, c) for r, c in entries if c.id in set(decision.write)]
        dead: list[Output] = []
        if chosen:
            vectors: list[list[float] | None] = (
                list(self.embed([c.text for _, c in chosen]))
                if self.embed is not None
                else [None] * len(chosen)
            )
            dead = self._write(task, chosen, vectors)
        logger.info(
            "%s: %d candidate(s): %d written, %d replaced, %d turned away (budget %d), %d refused",
            task,
            len(entries),
            len(chosen) - len(dead),
            len(decision.remove),
            len(decision.rejected),
            self.budget,
            len(dead),
        )
        return dead

    def _write(
        self, task: str, chosen: list[tuple[Any, Candidate]], vectors: list[list[float] | None]
    ) -> list[Output]:
        """Write the records in one request; when Argilla refuses it, one by one, so that the
        candidates it refuses (e.g. a suggested label the dataset does not have) go to the
        dead-letter topic alone and the others are written."""
        dead: list[Output] = []
        built: list[tuple[Any, Any]] = []
        for (record, candidate), vector in zip(chosen, vectors, strict=True):
            try:
                built.append((record, record_for(candidate, vector)))
            except Exception as exc:  # a candidate the SDK cannot turn into a record
                reason = f"cannot make an Argilla record of it: {type(exc).__name__}: {exc}"
                dead.append(dead_letter(record, reason, self.worker_id))
        try:
            self.queue.write(task, [rec for _, rec in built])
            self.written += len(built)
            return dead
        except Exception as exc:
            if not refused(exc):
                raise  # Argilla is down or misconfigured: nothing is committed, retried later
            logger.warning("%s: Argilla refused the batch (%s); writing one by one", task, exc)
        for record, rec in built:
            try:
                self.queue.write(task, [rec])
                self.written += 1
            except Exception as exc:
                if not refused(exc):
                    raise
                logger.warning("dead letter %s: Argilla refused it: %s", where(record), exc)
                dead.append(
                    dead_letter(record, f"Argilla refused the record: {exc}", self.worker_id)
                )
        return dead


def labels_for(settings: Settings) -> list[str]:
    """The label set of the classification dataset: configured, else the promoted model's."""
    if settings.argilla.labels:
        return list(settings.argilla.labels)
    from loop.errors import AlloopError
    from loop.registry import ModelRegistry

    registry = ModelRegistry(settings.registry_path)
    try:
        promoted = registry.promoted()
        return registry.card(promoted).labels if promoted else []
    except AlloopError:
        return []


def run(
    settings: Settings, servers: str, worker_id: str = "labeler", vectors: bool = True
) -> LoopStats:
    """Run the labeler until SIGTERM/SIGINT."""
    url, key = argilla_address(settings)
    client = rg.Argilla(api_url=url, api_key=key, timeout=int(settings.argilla.timeout_s))
    embed = Embedder() if vectors else None
    http = httpx.Client(
        base_url=url.rstrip("/"),
        headers={"X-Argilla-Api-Key": key},
        timeout=settings.argilla.timeout_s,
    )
    queue = ArgillaQueue(
        client=client,
        http=http,
        workspace=settings.argilla.workspace,
        prefix=settings.argilla.dataset_prefix,
        labels=labels_for(settings),
        min_submitted=settings.argilla.min_submitted,
        vector_dimensions=Embedder.dimensions if vectors else None,
        entity_types={task: list(settings.entities.types) for task in settings.entity_tasks},
        multi_label=settings.classification.multi_label,
    )
    labeler = Labeler(
        queue, settings.argilla.budget, worker_id, embed, settings.classification.multi_label
    )
    topics = settings.kafka.topics
    stop, backoff = start_worker(
        settings, servers, [topics.candidates, topics.labels, topics.dlq(topics.candidates)]
    )
    consumer, producer = worker_clients(
        settings, servers, topics.candidates, settings.argilla.labeler_group_id
    )
    logger.info(
        "labeler %s: %s -> Argilla %s (budget %d)",
        worker_id,
        topics.candidates,
        url,
        labeler.budget,
    )
    last_poll = 0.0
    published: dict[str, datetime] = {}  # what this process already relayed

    def catch_up() -> None:
        """Every ``poll_interval_s``: answers whose webhook was missed, to the labels topic."""
        nonlocal last_poll
        if time.monotonic() - last_poll < settings.argilla.poll_interval_s:
            return
        last_poll = time.monotonic()
        try:
            events = poll(http, settings.argilla.dataset_prefix, entity_tasks=settings.entity_tasks)
        except httpx.HTTPError as exc:
            logger.warning("the answers poll failed, retrying later: %s", exc)
            return
        settled = datetime.now(UTC) - timedelta(seconds=settings.argilla.poll_grace_s)
        fresh = [
            e
            for e in events
            if published.get(e.response_id) != e.labelled_at and e.labelled_at <= settled
        ]
        outputs = [Output.of(topics.labels, event) for event in fresh]
        send_all(producer, fit_outputs(outputs, settings.kafka.max_request_size, worker_id))
        published.update((e.response_id, e.labelled_at) for e in fresh)
        logger.info("answers poll: %d answer(s), %d to %s", len(events), len(fresh), topics.labels)

    stats = LoopStats()
    try:
        serve(
            consumer,
            producer,
            labeler.handle,
            stop,
            batch_size=128,
            max_wait_ms=1000,
            between_batches=catch_up,
            stats=stats,
            worker=worker_id,
            backoff=backoff,
            commit_delay_s=settings.kafka.commit_delay_s,
        )
    finally:
        http.close()
        logger.info(
            "labeler %s stopped: %d written, %d replaced",
            worker_id,
            labeler.written,
            labeler.removed,
        )
    return stats
