"""The labeler: consume ``candidates``, keep one Argilla dataset per task up to date.

Each candidate becomes an Argilla record whose id (``external_id``) is the document id, so a
replay or a re-scored candidate updates its record instead of adding one. The record carries
the model's prediction as a suggestion (score, and the model version as agent), metadata an
annotator can filter and sort on (selection score, strategy, reason, model version, task) and,
when enabled, the MiniLM embedding of the text as a vector for "find similar".

The budget (``argilla.budget``) caps the records waiting in a dataset; when it is full, a
better candidate replaces the weakest pending record that nobody has started
(:mod:`loop.budget`). Offsets are committed only after Argilla accepted the batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import argilla as rg
import httpx

from loop.budget import Offer, Pending, plan
from loop.errors import ConfigError
from loop.messages import Candidate
from loop.models.backbone import PackagedEncoder
from loop.models.base import applying
from loop.settings import Settings
from loop.split import EVALUATION
from workers.argilla_labels import LABEL_QUESTION, SPAN_QUESTION, TEXT_FIELD, poll
from workers.bus import (
    LoopStats,
    Output,
    StopFlag,
    dead_letter,
    decode_all,
    ensure_topics,
    fit_outputs,
    make_consumer,
    make_producer,
    run_loop,
    send_all,
    where,
)
from workers.retry import backoff_of, retry_outages

logger = logging.getLogger(__name__)

VECTOR = "embedding"
METADATA_TERMS = ("reason", "strategy", "model_version", "task")
PENDING_RECORDS = {
    "and": [
        {
            "type": "terms",
            "scope": {"entity": "record", "property": "status"},
            "values": ["pending"],
        }
    ]
}
GUIDELINES = (
    "Each record is a document the model is unsure about (reason: uncertain), a document "
    "drawn at random from the stream for the test set (evaluation), a random pick (random), or "
    "a cold-start pick. Choose the label the text "
    "deserves; the model's suggestion is only a hint. Discard what cannot be labelled."
)


ENTITY_GUIDELINES = (
    "Mark every entity of the listed types in the text, and only those. Records come from "
    "the model being unsure (reason: uncertain), from a surface form nobody has labelled yet, "
    "such as a new currency pair or coin (unseen), from a type with few examples (rare), or "
    "at random from the stream (evaluation, random). The pre-annotations are the model's or the patterns' "
    "spans: accept, correct or remove them. Submit with no span when the text has none."
)


MULTI_LABEL_GUIDELINES = (
    "Each record is a document the model is unsure about (reason: uncertain), a document "
    "drawn at random from the stream for the test set (evaluation), a random pick (random), or "
    "a cold-start pick. Choose every label that "
    "applies to the text; the suggested labels are only a hint. Discard what no label fits or "
    "what cannot be labelled."
)


def dataset_settings(
    labels: Sequence[str],
    min_submitted: int,
    dimensions: int | None,
    entity_types: Sequence[str] | None = None,
    multi_label: bool = False,
) -> Any:
    """The Argilla settings of a classification dataset (a label question, or a multi-label
    question with ``multi_label``) or, given ``entity_types``, of an entity dataset (a span
    question on the text)."""
    question: Any
    guidelines = GUIDELINES
    if entity_types:
        question = rg.SpanQuestion(
            name=SPAN_QUESTION,
            field=TEXT_FIELD,
            labels=list(entity_types),
            title="Entities",
            allow_overlapping=False,
        )
        guidelines = ENTITY_GUIDELINES
    elif multi_label:
        question = rg.MultiLabelQuestion(
            name=LABEL_QUESTION,
            title="Labels (all that apply)",
            labels=list(labels),
            visible_labels=None,  # all of them
            labels_order="suggestion",
        )
        guidelines = MULTI_LABEL_GUIDELINES
    else:
        question = rg.LabelQuestion(name=LABEL_QUESTION, title="Label", labels=list(labels))
    return rg.Settings(
        guidelines=guidelines,
        fields=[rg.TextField(name=TEXT_FIELD, title="Text", use_markdown=False)],
        questions=[question],
        metadata=[
            rg.FloatMetadataProperty(name="score", title="Selection score"),
            *(rg.TermsMetadataProperty(name=name) for name in METADATA_TERMS),
        ],
        vectors=[rg.VectorField(name=VECTOR, dimensions=dimensions)] if dimensions else [],
        distribution=rg.TaskDistribution(min_submitted=min_submitted),
    )


def record_for(candidate: Candidate, vector: list[float] | None) -> Any:
    """The Argilla record for a candidate; its id is the document id."""
    suggestions = []
    if candidate.spans:
        suggestions.append(
            rg.Suggestion(
                question_name=SPAN_QUESTION,
                value=[{"label": m.label, "start": m.start, "end": m.end} for m in candidate.spans],
                score=[round(float(m.score), 6) for m in candidate.spans],
                agent=candidate.model_version or "unknown",
            )
        )
    elif candidate.multi_label:
        names = list(candidate.probabilities)
        applies = applying(names, [candidate.probabilities[k] for k in names])
        if applies:  # no suggestion when the model says no label applies
            suggestions.append(
                rg.Suggestion(
                    question_name=LABEL_QUESTION,
                    value=applies,
                    score=[round(float(candidate.probabilities[k]), 6) for k in applies],
                    agent=candidate.model_version or "unknown",
                )
            )
    elif candidate.probabilities:
        label, score = max(candidate.probabilities.items(), key=lambda item: item[1])
        suggestions.append(
            rg.Suggestion(
                question_name=LABEL_QUESTION,
                value=label,
                score=round(float(score), 6),
                agent=candidate.model_version or "unknown",
            )
        )
    metadata = {
        "score": float(candidate.score),
        "reason": candidate.reason,
        "strategy": candidate.strategy,
        "model_version": candidate.model_version or "none",
        "task": candidate.task,
    }
    return rg.Record(
        id=candidate.id,
        fields={TEXT_FIELD: candidate.text},
        metadata=metadata,
        suggestions=suggestions,
        vectors={VECTOR: vector} if vector is not None else None,
    )


class Embedder:
    """MiniLM sentence embeddings for the "find similar" vectors, rounded for Argilla."""

    dimensions = PackagedEncoder.dimensions

    def __init__(self) -> None:
        self._encode = PackagedEncoder()

    def __call__(self, texts: Sequence[str]) -> list[list[float]]:
        return [[round(float(x), 6) for x in row] for row in self._encode(texts)]


@dataclass
class ArgillaQueue:
    """One alloop dataset per task in one Argilla workspace."""

    client: Any
    workspace: str
    prefix: str
    labels: list[str]
    min_submitted: int
    vector_dimensions: int | None
    http: Any = None  # an httpx.Client on Argilla's API with the same key
    entity_types: dict[str, list[str]] = field(default_factory=dict)  # entity task -> types
    multi_label: bool = False  # classification datasets ask for all the labels that apply
    _datasets: dict[str, Any] = field(default_factory=dict)

    def dataset(self, task: str) -> Any:
        """The task's dataset, created (with its workspace) on first use."""
        if task in self._datasets:
            return self._datasets[task]
        name = f"{self.prefix}-{task}"
        if self.client.workspaces(self.workspace) is None:
            rg.Workspace(name=self.workspace, client=self.client).create()
            logger.info("created Argilla workspace %s", self.workspace)
        dataset = self.client.datasets(name=name, workspace=self.workspace)
        types = self.entity_types.get(task)
        if dataset is None and types:
            settings = dataset_settings([], self.min_submitted, self.vector_dimensions, types)
            dataset = rg.Dataset(
                name=name, workspace=self.workspace, settings=settings, client=self.client
            ).create()
            logger.info("created Argilla dataset %s with entity types %s", name, types)
        if dataset is None:
            if not self.labels:
                raise ConfigError(
                    f"cannot create the Argilla dataset {name}: no labels known; promote a "
                    "model or set ALLOOP_ARGILLA__LABELS"
                )
            settings = dataset_settings(
                self.labels,
                self.min_submitted,
                self.vector_dimensions,
                multi_label=self.multi_label,
            )
            dataset = rg.Dataset(
                name=name, workspace=self.workspace, settings=settings, client=self.client
            ).create()
            logger.info(
                "created Argilla dataset %s with %slabels %s",
                name,
                "multi-label " if self.multi_label else "",
                self.labels,
            )
        self._datasets[task] = dataset
        return dataset

    def pending(self, task: str) -> list[tuple[Pending, Any]]:
        """Records nobody has completed, with whether a person has started each; the second
        item is the record's server id (what :meth:`remove` takes)."""
        dataset = self.dataset(task)
        found: list[tuple[Pending, Any]] = []
        offset = 0
        while True:
            page = self.http.post(
                f"/api/v1/datasets/{dataset.id}/records/search",
                params={"offset": offset, "limit": 500, "include": "responses"},
                json={"filters": PENDING_RECORDS},
            )
            page.raise_for_status()
            records = [item["record"] for item in page.json()["items"]]
            for record in records:
                metadata = record.get("metadata") or {}
                score = float(metadata.get("score", 0.0))
                started = bool(record.get("responses"))
                kept = metadata.get("reason") == EVALUATION
                found.append(
                    (Pending(str(record["external_id"]), score, started, kept), record["id"])
                )
            offset += len(records)
            if len(records) < 500:
                return found

    def remove(self, task: str, server_ids: list[Any]) -> None:
        """Delete records by their server ids (records nobody started)."""
        dataset = self.dataset(task)
        for start in range(0, len(server_ids), 100):
            chunk = ",".join(str(i) for i in server_ids[start : start + 100])
            self.http.delete(
                f"/api/v1/datasets/{dataset.id}/records", params={"ids": chunk}
            ).raise_for_status()

    def write(self, task: str, records: list[Any]) -> None:
        """Add or update records (keyed by document id)."""
        self.dataset(task).records.log(records)


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


REFUSED_STATUS = frozenset({400, 413, 422})


def refused(exc: BaseException) -> bool:
    """Whether Argilla turned a request down for what it contains (400, 413, 422), rather
    than for being unreachable, failing, or refusing our key."""
    status = getattr(exc, "status_code", None)
    if status is None and isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
    return status in REFUSED_STATUS


def connect(settings: Settings) -> tuple[str, str]:
    """Argilla's URL and owner key: configured, or the local stack's."""
    url = settings.argilla.url
    key = settings.argilla.api_key.get_secret_value() if settings.argilla.api_key else ""
    if not (url and key):
        from workers.stack import argilla_credentials

        local_url, local_key = argilla_credentials(settings.state_dir)
        url, key = url or local_url, key or local_key
    return url, key


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
    url, key = connect(settings)
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
    stop = StopFlag().install()
    backoff = backoff_of(settings)
    retry_outages(
        lambda: ensure_topics(
            servers,
            [topics.candidates, topics.labels, topics.dlq(topics.candidates)],
            topics.partitions,
        ),
        stop,
        backoff,
        "creating topics",
    )
    consumer = make_consumer(
        servers, settings.kafka, [topics.candidates], settings.argilla.labeler_group_id
    )
    producer = make_producer(servers, settings.kafka)
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
        run_loop(
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
        )
    finally:
        http.close()
        consumer.close()
        producer.close(timeout=10)
        logger.info(
            "labeler %s stopped: %d written, %d replaced",
            worker_id,
            labeler.written,
            labeler.removed,
        )
    return stats
