"""The scorer: consume ``docs.raw``, tag every document with the served model, publish
``docs.tagged``; poison messages go to ``docs.raw.dlq`` with the reason.

The model is swapped only between batches, after the previous batch's outputs are
acknowledged and its offsets committed: no document in flight is dropped or published twice
because of a reload. The registry's pointer is checked every ``scorer.reload_check_s`` seconds,
and at once when the ``models`` topic announces a promotion or rollback
(:mod:`connectors.model_events`).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from connectors.kafka import LoopStats, serve, start_worker, worker_clients
from connectors.model_events import ModelEventListener
from connectors.outputs import Output, dead_letter, decode_all, fit_outputs
from loop.classification.base import applying
from loop.classification.serving import ModelWatcher, ReloadCheck, ServedModel
from loop.drift.monitor import DriftMonitor, drift_event, monitor_of
from loop.embeddings.backbone import PackagedEncoder, threads_in_use, use_threads
from loop.entities.selection import EntityScored
from loop.entities.serving import EntityTagger
from loop.memory import release_free_memory
from loop.messages import Candidate, Document, TaggedDocument
from loop.registry import ModelRegistry
from loop.selection.windows import (
    CandidateRounds,
    EntityRounds,
    evaluation_candidates,
)
from loop.settings import Settings
from workers.scorer_parts import candidate_rounds, entity_rounds, entity_tagger

logger = logging.getLogger(__name__)

# A tagged document with the record it came from and its sentence embedding (if known).
Entry = tuple[Any, TaggedDocument, npt.NDArray[np.float32] | None]
# A batch's records and the entity scan of their documents, running in another thread.
Ahead = tuple[list[Any], Future[list[EntityScored]]]


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


# Probabilities are published to 4 decimals. A document's numbers do not depend on its batch
# (fixed-width batches), so a replay re-publishes the same bytes
# (docs/messages.md#what-a-replay-re-publishes).
PROBABILITY_DECIMALS = 4


def tag(
    documents: Sequence[Document], served: ServedModel | None, batch_size: int
) -> tuple[list[TaggedDocument], npt.NDArray[np.float32] | None]:
    """Tag documents with ``served`` (or as unscored when no model is promoted); with the
    embeddings the model computed on the way, when it exposes them."""
    if served is None:
        return [
            TaggedDocument(
                id=d.id, text=d.text, status="unscored", source=d.source, metadata=d.metadata
            )
            for d in documents
        ], None
    classifier = served.classifier
    labels = classifier.labels
    texts = [d.text for d in documents]
    embeddings: npt.NDArray[np.float32] | None = None
    if hasattr(classifier, "predict_with_embeddings"):
        probs, embeddings = classifier.predict_with_embeddings(texts, batch_size=batch_size)
    else:
        probs = classifier.predict_proba(texts, batch_size=batch_size)
    tagged = []
    for doc, row in zip(documents, probs, strict=True):
        best = int(np.argmax(row))
        applies = applying(labels, row) if classifier.multi_label else None
        tagged.append(
            TaggedDocument(
                id=doc.id,
                text=doc.text,
                status="scored",
                label=labels[best] if applies is None or applies else None,
                labels=applies,
                score=round(float(row[best]), PROBABILITY_DECIMALS),
                probabilities={
                    label: round(float(p), PROBABILITY_DECIMALS)
                    for label, p in zip(labels, row, strict=True)
                },
                model_version=served.version,
                source=doc.source,
                metadata=doc.metadata,
            )
        )
    return tagged, embeddings


@dataclass
class Scorer:
    """Turns a batch of raw records into tagged outputs and dead letters."""

    settings: Settings
    watcher: ModelWatcher
    worker_id: str
    rounds: CandidateRounds | None = None
    entities: EntityTagger | None = None
    entity_rounds: EntityRounds | None = None
    encoder: Callable[[Sequence[str]], npt.NDArray[np.float32]] | None = None
    """Embeds the window while no model serves (the cold start's representative picks)."""
    drift: DriftMonitor | None = None
    """Reports drift per window from the embeddings and probabilities computed here."""
    _beside: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)
    """The thread the entity tagger runs in, beside the classifier."""

    def __post_init__(self) -> None:
        config = self.settings.scorer
        if self.entities is None and self.settings.entities.enabled:
            self.entities = entity_tagger(self.settings)
        if self.entities is not None:
            self._beside = ThreadPoolExecutor(1, thread_name_prefix="entity-tagger")
        if self.drift is None and self.settings.drift.enabled:
            seen = self.entities.seen_forms if self.entities is not None else None
            self.drift = monitor_of(self.settings, seen)
        if self.rounds is None and config.candidates:
            self.rounds = candidate_rounds(self.settings, self.drift)
        if self.encoder is None and config.candidates and config.cold_start_embeddings:
            self.encoder = PackagedEncoder()
        if self.entity_rounds is None and self.entities is not None and config.candidates:
            self.entity_rounds = entity_rounds(self.settings, self.entities)

    def refresh(self) -> None:
        """Pick up newly promoted versions (between batches only)."""
        self.watcher.refresh()
        if self.rounds is not None and self.rounds.newest is not None:
            self.rounds.newest.watcher.refresh()
        if self.entities is not None and self.entities.watcher is not None:
            self.entities.watcher.refresh()

    def scan_ahead(self, pairs: list[tuple[Any, Document]]) -> Ahead | None:
        """Start the entity scan of a decoded batch in the tagger's own thread, to run while
        the classifier scores it: torch releases the GIL, so the two encoders use both cores
        (about 1.3 times the documents per CPU-second of one after the other with two torch
        threads each, docs/benchmarks.md). A text's entities do not depend on its batch-mates
        (fixed-width batches), so the scan of the whole batch serves whatever subset survives
        the classifier."""
        if self.entities is None or self._beside is None or not pairs:
            return None
        ids, texts = [d.id for _, d in pairs], [d.text for _, d in pairs]
        size = self.settings.scorer.batch_size
        scan = self._beside.submit(self.entities.scan, ids, texts, size)
        return [record for record, _ in pairs], scan

    def tag_entities(
        self, scored: list[Entry], ahead: Ahead | None = None
    ) -> tuple[list[Entry], list[EntityScored], list[Output]]:
        """Add the entities to tagged documents (from the scan ``ahead`` when one was
        started); with what selection needs to know, and a dead letter for each document
        that could not be tagged."""
        if self.entities is None or not scored:
            if ahead is not None:  # nothing left to tag: let the scan end with this batch
                wait([ahead[1]])
            return scored, [], []
        tagger = self.entities
        size = self.settings.scorer.batch_size
        dead: list[Output] = []
        try:
            if ahead is not None:
                records, scan = ahead
                position = {id(record): i for i, record in enumerate(records)}
                results = scan.result()
                found = [results[position[id(record)]] for record, _, _ in scored]
            else:
                texts = [t.text for _, t, _ in scored]
                found = tagger.scan([t.id for _, t, _ in scored], texts, size)
            kept = scored
        except Exception as exc:  # isolate the document that breaks the extractor
            logger.exception("entity tagging failed (%s); tagging one by one", exc)
            kept, found = [], []
            for entry in scored:
                record, doc, _ = entry
                try:
                    found.extend(tagger.scan([doc.id], [doc.text], 1))
                    kept.append(entry)
                except Exception as single:
                    reason = f"entity tagging failed: {single}"
                    dead.append(dead_letter(record, reason, self.worker_id))
        version = tagger.version
        return (
            [
                (
                    record,
                    t.model_copy(update={"entities": tagger.tags(s), "entity_version": version}),
                    v,
                )
                for (record, t, v), s in zip(kept, found, strict=True)
            ],
            found,
            dead,
        )

    def score(self, pairs: list[tuple[Any, Document]]) -> tuple[list[Entry], list[Output]]:
        """Tag decoded documents with the served model, each with its record and embedding;
        a document that breaks the model is dead-lettered alone."""
        served = self.watcher.served
        documents = [doc for _, doc in pairs]
        try:
            tagged, embeddings = tag(documents, served, self.settings.scorer.batch_size)
        except Exception as exc:  # a poison document must not stop the batch: isolate it
            logger.exception("batch scoring failed (%s); scoring one by one", exc)
            scored: list[Entry] = []
            dead: list[Output] = []
            for record, doc in pairs:
                try:
                    scored.append((record, tag([doc], served, 1)[0][0], None))
                except Exception as single:
                    reason = f"scoring failed: {single}"
                    dead.append(dead_letter(record, reason, self.worker_id))
            return scored, dead
        vectors = (
            list(embeddings)
            if embeddings is not None and len(embeddings) == len(tagged)
            else [None] * len(tagged)
        )
        records = [record for record, _ in pairs]
        return list(zip(records, tagged, vectors, strict=True)), []

    def handle_and_release(self, records: list[Any]) -> list[Output]:
        """:meth:`handle`, then the allocator's free pages given back (loop/memory.py): the
        scorer's memory stays flat without the page faults of serving every large block from
        mmap, which cost about a quarter of its throughput (docs/benchmarks.md)."""
        try:
            return self.handle(records)
        finally:
            release_free_memory()

    def handle(self, records: list[Any]) -> list[Output]:
        topics = self.settings.kafka.topics
        max_bytes = self.settings.kafka.max_request_size
        pairs, outputs = decode_all(records, Document, self.worker_id)
        headers = [("alloop.worker", self.worker_id.encode())]
        ahead = self.scan_ahead(pairs)
        scored, dead = self.score(pairs)
        outputs.extend(dead)
        if self.watcher.served is None and self.encoder is not None and scored:
            # No model to embed with: the packaged encoder, for the cold start's picks.
            encoded = self.encoder([doc.text for _, doc, _ in scored])
            scored = [(r, doc, v) for (r, doc, _), v in zip(scored, encoded, strict=True)]
        scored, scanned, dead = self.tag_entities(scored, ahead)
        outputs.extend(dead)
        fits: list[bool] = []
        for record, doc, _ in scored:
            try:
                out = Output.of(topics.tagged, doc, headers, source=record)
            except Exception as exc:  # it decoded, yet cannot be written out again
                reason = f"the tagged document cannot be encoded: {exc}"
                outputs.append(dead_letter(record, reason, self.worker_id))
                fits.append(False)
                continue
            outputs.append(out)  # an oversized one is dead-lettered by fit_outputs below
            fits.append(out.size() <= max_bytes)
        kept = [entry for entry, fit in zip(scored, fits, strict=True) if fit]
        tagged = [doc for _, doc, _ in kept]
        vectors = [vector for _, _, vector in kept if vector is not None]
        embeddings = np.stack(vectors) if kept and len(vectors) == len(kept) else None
        source = {doc.id: record for record, doc, _ in kept}
        if self.drift is not None:  # flagged windows are announced on the models topic
            for report in self.drift.add(tagged, embeddings):
                if report.drift:
                    outputs.append(Output.of(topics.models, drift_event(report), headers))

        def candidates(picked: list[Candidate]) -> None:
            outputs.extend(
                Output.of(topics.candidates, c, headers, source=source.get(c.id)) for c in picked
            )

        if self.settings.scorer.candidates:
            entity_task = self.settings.entities.task if self.entities is not None else None
            fraction = self.settings.scorer.evaluation_fraction
            keep, sampled = evaluation_candidates(tagged, fraction, entity_task)
            candidates(sampled)
            left = [tagged[i] for i in keep]
            if self.rounds is not None:
                candidates(
                    self.rounds.add(left, embeddings[keep] if embeddings is not None else None)
                )
            if self.entity_rounds is not None and scanned:
                found = [s for s, fit in zip(scanned, fits, strict=True) if fit]
                candidates(self.entity_rounds.add(left, [found[i] for i in keep]))
        return fit_outputs(outputs, max_bytes, self.worker_id)


def run(settings: Settings, servers: str, worker_id: str | None = None) -> LoopStats:
    """Run the scorer until SIGTERM/SIGINT."""
    worker_id = worker_id or default_worker_id()
    topics = settings.kafka.topics
    stop, backoff = start_worker(
        settings,
        servers,
        [topics.raw, topics.tagged, topics.candidates, topics.models, topics.dlq(topics.raw)],
    )
    use_threads(settings.scorer.threads)
    registry = ModelRegistry(settings.registry_path)
    watcher = ModelWatcher(registry, settings.precision)
    watcher.refresh()
    if watcher.served is None:
        logger.warning("no promoted model in %s: documents come out unscored", registry.root)
    scorer = Scorer(settings, watcher, worker_id)
    consumer, producer = worker_clients(settings, servers, topics.raw, settings.scorer.group_id)
    check = ReloadCheck(settings.scorer.reload_check_s)
    listener = None
    if settings.kafka.model_events:
        listener = ModelEventListener(lambda: servers, settings, lambda _: check.wake()).start()

    def between_batches() -> None:
        if check.due():
            scorer.refresh()

    logger.info(
        "scorer %s consuming %s in group %s, model %s, entities %s, on %d torch thread(s)",
        worker_id,
        topics.raw,
        settings.scorer.group_id,
        watcher.version or "none",
        scorer.entities.version if scorer.entities else "off",
        threads_in_use(),
    )
    stats = LoopStats()
    try:
        serve(
            consumer,
            producer,
            scorer.handle_and_release,
            stop,
            batch_size=settings.scorer.batch_size,
            max_wait_ms=settings.scorer.max_wait_ms,
            between_batches=between_batches,
            stats=stats,
            worker=worker_id,
            backoff=backoff,
            commit_delay_s=settings.kafka.commit_delay_s,
        )
    finally:
        if listener is not None:
            listener.stop()
        logger.info(
            "scorer %s stopped: %d records in %d batches, %d dead letters",
            worker_id,
            stats.records,
            stats.batches,
            stats.dead,
        )
    return stats
