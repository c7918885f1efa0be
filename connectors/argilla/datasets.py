"""alloop's Argilla datasets: their settings (one label, label-set or span question, metadata
to filter on, an optional vector), the record each candidate becomes (its id is the document
id), and the queue the labeler keeps in each dataset."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import argilla as rg
import httpx

from connectors.argilla.answers import LABEL_QUESTION, SPAN_QUESTION, TEXT_FIELD
from connectors.argilla.queue import pending_records
from loop.classification.base import applying
from loop.errors import ConfigError
from loop.messages import Candidate
from loop.selection.budget import Pending
from loop.training.split import EVALUATION

logger = logging.getLogger(__name__)

VECTOR = "embedding"
METADATA_TERMS = ("reason", "strategy", "model_version", "task")
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
        for record in pending_records(self.http, dataset.id):
            metadata = record.get("metadata") or {}
            score = float(metadata.get("score", 0.0))
            started = bool(record.get("responses"))
            kept = metadata.get("reason") == EVALUATION
            found.append((Pending(str(record["external_id"]), score, started, kept), record["id"]))
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


REFUSED_STATUS = frozenset({400, 413, 422})


def refused(exc: BaseException) -> bool:
    """Whether Argilla turned a request down for what it contains (400, 413, 422), rather
    than for being unreachable, failing, or refusing our key."""
    status = getattr(exc, "status_code", None)
    if status is None and isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
    return status in REFUSED_STATUS
