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
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from loop.messages import Candidate, Document, TaggedDocument
from loop.selection import Scored, SelectionConfig, select
from loop.serving import ModelWatcher, ServedModel
from loop.settings import Settings
from workers.bus import (
    LoopStats,
    Output,
    StopFlag,
    dead_letter,
    decode_all,
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
    return tagged, embeddings


class CandidateRounds:
    """A bounded window of tagged documents and, every ``round_size`` of them, a selection
    round (:func:`loop.selection.select`) whose picks become candidates for people."""

    def __init__(
        self,
        config: SelectionConfig,
        window_size: int,
        round_size: int,
        labelled: Callable[[str | None], dict[str, int]],
    ) -> None:
        self.config = config
        self.round_size = round_size
        self.labelled = labelled
        self.window: deque[tuple[TaggedDocument, Scored]] = deque(maxlen=window_size)
        self.since_round = 0

    def add(
        self, tagged: Sequence[TaggedDocument], embeddings: npt.NDArray[np.float32] | None
    ) -> list[Candidate]:
        for i, doc in enumerate(tagged):
            vector = (
                embeddings[i] if embeddings is not None and len(embeddings) == len(tagged) else None
            )
            self.window.append((doc, Scored(doc.id, doc.text, doc.probabilities, vector)))
        self.since_round += len(tagged)
        if self.since_round < self.round_size or not self.window:
            return []
        self.since_round = 0
        return self.round()

    def round(self) -> list[Candidate]:
        """Select from the window; the picked documents leave it."""
        entries = list(self.window)
        version = entries[-1][0].model_version
        counts = self.labelled(version)
        labels = sorted({k for doc, _ in entries for k in doc.probabilities}) or sorted(counts)
        picks = select([scored for _, scored in entries], self.config, counts, labels)
        by_id = {doc.id: doc for doc, _ in entries}
        chosen = {p.id for p in picks}
        self.window = deque(
            (e for e in entries if e[0].id not in chosen), maxlen=self.window.maxlen
        )
        out = []
        for pick in picks:
            doc = by_id[pick.id]
            out.append(
                Candidate(
                    id=doc.id,
                    text=doc.text,
                    model_version=doc.model_version,
                    strategy=pick.strategy,
                    score=pick.score,
                    reason=pick.reason,
                    probabilities=doc.probabilities,
                    metadata=doc.metadata,
                )
            )
        logger.info(
            "selection round: %d candidates (%s) from a window of %d",
            len(out),
            ", ".join(f"{r} {n}" for r, n in Counter(p.reason for p in picks).items()),
            len(entries),
        )
        return out


@dataclass
class Scorer:
    """Turns a batch of raw records into tagged outputs and dead letters."""

    settings: Settings
    watcher: ModelWatcher
    worker_id: str
    rounds: CandidateRounds | None = None

    def __post_init__(self) -> None:
        config = self.settings.scorer
        if self.rounds is None and config.candidates:
            self.rounds = CandidateRounds(
                selection_config(self.settings),
                config.window_size,
                config.round_size,
                labelled_counts(self.settings),
            )

    def handle(self, records: list[Any]) -> list[Output]:
        topics = self.settings.kafka.topics
        documents, outputs = decode_all(records, Document, self.worker_id)
        served = self.watcher.served
        headers = [("alloop.worker", self.worker_id.encode())]
        embeddings: npt.NDArray[np.float32] | None = None
        try:
            tagged, embeddings = tag(documents, served, self.settings.scorer.batch_size)
        except Exception as exc:  # a poison document must not stop the batch: isolate it
            logger.exception("batch scoring failed (%s); scoring one by one", exc)
            tagged = []
            by_id = {r.key.decode() if r.key else None: r for r in records}
            for doc in documents:
                try:
                    tagged.extend(tag([doc], served, 1)[0])
                except Exception as single:
                    record = by_id.get(doc.id, records[0])
                    outputs.append(dead_letter(record, f"scoring failed: {single}", self.worker_id))
        outputs.extend(Output.of(topics.tagged, t, headers) for t in tagged)
        if self.rounds is not None:
            picked = self.rounds.add(tagged, embeddings)
            outputs.extend(Output.of(topics.candidates, c, headers) for c in picked)
        return outputs


UNKNOWN_COUNT = 1_000_000


def selection_config(settings: Settings) -> SelectionConfig:
    config = settings.scorer
    return SelectionConfig(
        strategy=config.strategy,
        batch_size=config.candidates_per_round,
        random_fraction=config.random_fraction,
        seed_keywords=config.seed_keywords,
    )


def labelled_counts(settings: Settings) -> Callable[[str | None], dict[str, int]]:
    """Labels per class behind a model version (its card), for class balance and cold start."""
    from loop.errors import AlloopError
    from loop.registry import ModelRegistry

    registry = ModelRegistry(settings.registry_path)

    def counts(version: str | None) -> dict[str, int]:
        if version is None:
            return {}
        try:
            card = registry.card(version)
        except AlloopError:
            return {}
        per_label = card.counts.get("per_label")
        if not per_label:  # a model trained elsewhere: its counts are unknown, not zero
            return dict.fromkeys(card.labels, UNKNOWN_COUNT)
        return {str(k): int(v) for k, v in per_label.items()}

    return counts


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
