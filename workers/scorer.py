"""The scorer: consume ``docs.raw``, tag every document with the served model, publish
``docs.tagged``; poison messages go to ``docs.raw.dlq`` with the reason.

The model is swapped only between batches, after the previous batch's outputs are
acknowledged and its offsets committed: no document in flight is dropped or published twice
because of a reload.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from loop.errors import MessageError
from loop.ids import stable_fraction
from loop.messages import Candidate, Document, TaggedDocument, decode
from loop.serving import ModelWatcher, ServedModel
from loop.settings import Settings
from workers.bus import (
    LoopStats,
    Output,
    StopFlag,
    dead_letter,
    ensure_topics,
    make_consumer,
    make_producer,
    run_loop,
)

logger = logging.getLogger(__name__)


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def tag(
    documents: Sequence[Document], served: ServedModel | None, batch_size: int
) -> list[TaggedDocument]:
    """Tag documents with ``served`` (or as unscored when no model is promoted)."""
    if served is None:
        return [
            TaggedDocument(
                id=d.id, text=d.text, status="unscored", source=d.source, metadata=d.metadata
            )
            for d in documents
        ]
    labels = served.classifier.labels
    probs = served.classifier.predict_proba([d.text for d in documents], batch_size=batch_size)
    tagged = []
    for doc, row in zip(documents, probs, strict=True):
        best = int(np.argmax(row))
        tagged.append(
            TaggedDocument(
                id=doc.id,
                text=doc.text,
                status="scored",
                label=labels[best],
                score=round(float(row[best]), 6),
                probabilities={
                    label: round(float(p), 6) for label, p in zip(labels, row, strict=True)
                },
                model_version=served.version,
                source=doc.source,
                metadata=doc.metadata,
            )
        )
    return tagged


RANDOM_SLICE_SALT = "alloop-random-slice"


def candidates(
    tagged: Sequence[TaggedDocument], threshold: float, random_rate: float
) -> list[Candidate]:
    """The tagged documents worth a person's time, by a simple rule.

    A scored document whose top probability is below ``threshold`` is ``uncertain`` (score:
    one minus that probability). Of the rest, a stable ``random_rate`` slice (a hash of the id,
    so a replay picks the same documents) goes as ``random``, or ``cold-start`` while no model
    is served; that slice keeps the test set representative of the stream.
    """
    picked = []
    for doc in tagged:
        if doc.status == "scored" and doc.score is not None and doc.score < threshold:
            reason, strategy, score = "uncertain", "least-confidence", 1.0 - doc.score
        elif stable_fraction(doc.id, RANDOM_SLICE_SALT) < random_rate:
            reason = "random" if doc.status == "scored" else "cold-start"
            strategy, score = "random", 0.0
        else:
            continue
        picked.append(
            Candidate(
                id=doc.id,
                text=doc.text,
                model_version=doc.model_version,
                strategy=strategy,
                score=round(score, 6),
                reason=reason,  # type: ignore[arg-type]
                probabilities=doc.probabilities,
                metadata=doc.metadata,
            )
        )
    return picked


@dataclass
class Scorer:
    """Turns a batch of raw records into tagged outputs and dead letters."""

    settings: Settings
    watcher: ModelWatcher
    worker_id: str

    def handle(self, records: list[Any]) -> list[Output]:
        topics = self.settings.kafka.topics
        outputs: list[Output] = []
        documents: list[Document] = []
        for record in records:
            try:
                documents.append(decode(record.value, Document))
            except MessageError as exc:
                logger.warning(
                    "dead letter %s/%d/%d: %s", record.topic, record.partition, record.offset, exc
                )
                outputs.append(dead_letter(record, str(exc), self.worker_id))
        served = self.watcher.served
        headers = [("alloop.worker", self.worker_id.encode())]
        try:
            tagged = tag(documents, served, self.settings.scorer.batch_size)
        except Exception as exc:  # a poison document must not stop the batch: isolate it
            logger.exception("batch scoring failed (%s); scoring one by one", exc)
            tagged = []
            by_id = {r.key.decode() if r.key else None: r for r in records}
            for doc in documents:
                try:
                    tagged.extend(tag([doc], served, 1))
                except Exception as single:
                    record = by_id.get(doc.id, records[0])
                    outputs.append(dead_letter(record, f"scoring failed: {single}", self.worker_id))
        outputs.extend(Output.of(topics.tagged, t, headers) for t in tagged)
        config = self.settings.scorer
        if config.candidates:
            picked = candidates(tagged, config.uncertainty_threshold, config.random_rate)
            outputs.extend(Output.of(topics.candidates, c, headers) for c in picked)
        return outputs


def run(settings: Settings, servers: str, worker_id: str | None = None) -> LoopStats:
    """Run the scorer until SIGTERM/SIGINT."""
    from loop.memory import tune_malloc
    from loop.registry import ModelRegistry

    tune_malloc()
    worker_id = worker_id or default_worker_id()
    topics = settings.kafka.topics
    ensure_topics(
        servers,
        [topics.raw, topics.tagged, topics.candidates, topics.dlq(topics.raw)],
        topics.partitions,
    )
    registry = ModelRegistry(settings.registry_path)
    watcher = ModelWatcher(registry)
    watcher.refresh()
    if watcher.served is None:
        logger.warning("no promoted model in %s: documents come out unscored", registry.root)
    scorer = Scorer(settings, watcher, worker_id)
    stop = StopFlag().install()
    consumer = make_consumer(servers, settings.kafka, [topics.raw], settings.scorer.group_id)
    producer = make_producer(servers, settings.kafka)
    last_check = time.monotonic()

    def between_batches() -> None:
        nonlocal last_check
        if time.monotonic() - last_check >= settings.scorer.reload_check_s:
            watcher.refresh()
            last_check = time.monotonic()

    logger.info(
        "scorer %s consuming %s in group %s, model %s",
        worker_id,
        topics.raw,
        settings.scorer.group_id,
        watcher.version or "none",
    )
    stats = LoopStats()
    try:
        run_loop(
            consumer,
            producer,
            scorer.handle,
            stop,
            batch_size=settings.scorer.batch_size,
            max_wait_ms=settings.scorer.max_wait_ms,
            between_batches=between_batches,
            stats=stats,
        )
    finally:
        consumer.close()
        producer.close(timeout=10)
        logger.info(
            "scorer %s stopped: %d records in %d batches, %d dead letters",
            worker_id,
            stats.records,
            stats.batches,
            stats.dead,
        )
    return stats
