"""Train a classifier on labelled documents and publish it as a new registry version."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from loop.errors import ModelError
from loop.labels import LabelStore
from loop.messages import Document, LabelEvent
from loop.models.base import ClassifierConfig, ClassifierFactory, Target, count_labels
from loop.registry import ModelCard, ModelRegistry
from loop.split import split

SEED = "seed"
"""The origin (and response-id prefix) of labels that came from a seed file."""


def seed_labels(documents: Sequence[Document], store: LabelStore, task: str) -> int:
    """Put a seed file's labelled documents into the label store, so that every training
    round keeps them (the trainer trains on the store); one answer per document, keyed
    ``seed:<id>``, so seeding twice adds nothing. Returns how many were new."""
    fresh = []
    for doc in documents:
        held = store.get(f"{SEED}:{doc.id}")
        if doc.label is None and doc.labels is None:
            continue
        labels = sorted(set(doc.labels)) if doc.labels is not None else None
        label = None if labels is not None else doc.label
        if held is not None and (held.label, held.labels) == (label, labels):
            continue
        fresh.append(
            LabelEvent(
                id=doc.id,
                text=doc.text,
                task=task,
                label=label,
                labels=labels,
                response_id=f"{SEED}:{doc.id}",
                annotator=SEED,
                origin=SEED,
            )
        )
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
    test_fraction: float | None = None,
) -> ModelCard:
    """Train on every labelled document and publish the result; optionally promote it.

    With ``test_fraction``, the documents that the frozen split puts in the test set are held
    out (use it when the same documents are seeded into the label store, so that no version
    is later scored on documents it trained on).

    With ``promote``, the new version is promoted only if the pointer still names the version
    that served when training began: a promotion or rollback made meanwhile stands, and
    :class:`~loop.errors.PointerMoved` says so (the new version stays registered)."""
    if config.multi_label:
        labelled = [doc for doc in documents if doc.labels is not None]
    else:
        labelled = [doc for doc in documents if doc.label is not None]
    if test_fraction is not None:
        labelled = split(labelled, test_fraction)[0]
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
