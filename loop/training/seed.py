"""Train a classifier on labelled documents and publish it as a new registry version."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from loop.classification.base import ClassifierConfig, ClassifierFactory, Target, count_labels
from loop.errors import ModelError
from loop.labels import LabelStore
from loop.messages import Document, EntityMention, LabelEvent
from loop.registry import ModelCard, ModelRegistry

SEED = "seed"
"""The origin (and response-id prefix) of labels that came from a seed file."""


def seed_labels(
    documents: Sequence[Document], store: LabelStore, task: str, origin: str = SEED
) -> int:
    """Put a file's labelled documents into the label store: a seed file's (``origin``
    ``seed``), so that every training round keeps them (the trainer trains on the store), or
    an evaluation file's (``test-file``, :data:`loop.training.split.TEST_FILE`), which joins the frozen
    test set. One answer per document, keyed ``<origin>:<id>``, so adding a file twice adds
    nothing. Returns how many were new."""
    events = []
    for doc in documents:
        if doc.label is None and doc.labels is None:
            continue
        labels = sorted(set(doc.labels)) if doc.labels is not None else None
        label = None if labels is not None else doc.label
        events.append(file_answer(doc.id, doc.text, task, origin, label=label, labels=labels))
    return add_answers(store, events)


def file_answer(
    doc_id: str,
    text: str,
    task: str,
    origin: str,
    *,
    label: str | None = None,
    labels: list[str] | None = None,
    spans: list[EntityMention] | None = None,
) -> LabelEvent:
    """The answer a labelled file gives for one document, keyed ``<origin>:<id>``."""
    return LabelEvent(
        id=doc_id,
        text=text,
        task=task,
        label=label,
        labels=labels,
        spans=spans,
        response_id=f"{origin}:{doc_id}",
        annotator=origin,
        origin=origin,
    )


def add_answers(store: LabelStore, answers: Sequence[LabelEvent]) -> int:
    """Add a file's answers to the store, but not those it holds already with the same
    label, label set or spans (their times differ, and the file did not change them)."""
    fresh = []
    for answer in answers:
        held = store.get(answer.response_id)
        said = (answer.label, answer.labels, answer.spans)
        if held is not None and (held.label, held.labels, held.spans) == said:
            continue
        fresh.append(answer)
    return store.add(fresh)


logger = logging.getLogger(__name__)


def train_and_publish(
    documents: Sequence[Document],
    factory: ClassifierFactory,
    registry: ModelRegistry,
    config: ClassifierConfig = ClassifierConfig(),
    *,
    promote: bool = False,
    notes: str | None = None,
) -> ModelCard:
    """Train on every labelled document and publish the result; optionally promote it.

    With ``promote``, the new version is promoted only if the pointer still names the version
    that served when training began: a promotion or rollback made meanwhile stands, and
    :class:`~loop.errors.PointerMoved` says so (the new version stays registered)."""
    if config.multi_label:
        labelled = [doc for doc in documents if doc.labels is not None]
    else:
        labelled = [doc for doc in documents if doc.label is not None]
    if not labelled:
        wanted = "label sets (a 'labels' list)" if config.multi_label else "a label"
        raise ModelError(f"no documents with {wanted} to train on")
    serving = registry.promoted()
    texts = [doc.text for doc in labelled]
    targets: list[Target] = [
        tuple(doc.labels or ()) if config.multi_label else str(doc.label) for doc in labelled
    ]
    classifier = factory.train(texts, targets, config)
    per_label = count_labels(targets)
    card = registry.publish(
        classifier.save,
        labels=classifier.labels,
        kind=factory.name,
        training_args=config.to_dict(),
        counts={"train": len(labelled), "per_label": dict(sorted(per_label.items()))},
        parent=serving,
        notes=notes,
    )
    logger.info("published model %s trained on %d labels", card.version, len(labelled))
    if promote:
        registry.promote(card.version, expected=serving)
    return card
