"""Train a classifier on labelled documents and publish it as a new registry version."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

from loop.errors import ModelError
from loop.messages import Document
from loop.models.base import ClassifierConfig, ClassifierFactory
from loop.registry import ModelCard, ModelRegistry

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
    """Train on every labelled document and publish the result; optionally promote it."""
    labelled = [doc for doc in documents if doc.label is not None]
    if not labelled:
        raise ModelError("no labelled documents to train on")
    texts = [doc.text for doc in labelled]
    labels = [str(doc.label) for doc in labelled]
    classifier = factory.train(texts, labels, config)
    per_label = Counter(labels)
    card = registry.publish(
        classifier.save,
        labels=classifier.labels,
        kind=factory.name,
        training_args=config.to_dict(),
        counts={"train": len(labelled), "per_label": dict(sorted(per_label.items()))},
        parent=registry.promoted(),
        notes=notes,
    )
    logger.info("published model %s trained on %d labels", card.version, len(labelled))
    if promote:
        registry.promote(card.version)
    return card
