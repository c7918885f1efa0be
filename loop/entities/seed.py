"""The entity extractor's seed model: a labelled file in, a registered version out.

What ``alloop train --task entities`` does, as :mod:`loop.training.seed` does it for the
classifier: the file's documents join the label store (as seed labels, or as the frozen test
set for an evaluation file), an extractor is trained on the seed documents and published in
the entity registry with the counts the scorer reads (the surface forms behind it, labelled
spans per type), and every version is scored on the current test set, so that the entity
curve starts at the seed.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

from loop.entities.base import ExtractorFactory
from loop.entities.conll import Labelled
from loop.entities.rounds import (
    PATTERNS,
    TASK,
    EntityRoundConfig,
    example,
    forms,
    patterns_scorer,
    version_scorer,
)
from loop.entities.serving import mention
from loop.errors import ModelError
from loop.evaluation.scoreboard import Scores, TestSet, rescore
from loop.labels import LabelStore, ResolvedLabel, agreed
from loop.registry import ModelCard, ModelRegistry
from loop.training.seed import SEED, add_answers, file_answer
from loop.training.split import split

logger = logging.getLogger(__name__)


def file_types(items: Sequence[Labelled]) -> list[str]:
    """The entity types a file's spans use, sorted."""
    return sorted({span.label for item in items for span in item.example.spans})


def as_labelled(items: Sequence[Labelled], task: str, origin: str) -> list[ResolvedLabel]:
    """A file's examples as the label store would resolve them (one agreed answer each)."""
    return [
        agreed(
            item.id,
            item.example.text,
            task,
            origin,
            spans=[mention(span) for span in item.example.spans],
        )
        for item in items
    ]


def seed_span_labels(
    items: Sequence[Labelled], store: LabelStore, task: str, origin: str = SEED
) -> int:
    """Put a file's examples into the label store as answers of ``origin`` (a document with
    no span says it holds no entity); adding the same file twice adds nothing. Returns how
    many answers were new."""
    answers = [
        file_answer(item.id, item.text, task, origin, spans=list(item.spans or ()))
        for item in as_labelled(items, task, origin)
    ]
    return add_answers(store, answers)


def train_seed(
    items: Sequence[Labelled],
    factory: ExtractorFactory,
    registry: ModelRegistry,
    config: EntityRoundConfig,
    *,
    promote: bool = True,
    notes: str | None = None,
) -> ModelCard:
    """Train an extractor of ``config.types`` on the examples and publish it in the entity
    registry; with ``promote``, promote it unless the pointer moved while it trained."""
    labelled = as_labelled(items, TASK, SEED)
    per_type = Counter(m.label for item in labelled for m in item.spans or ())
    if not per_type:
        raise ModelError("the seed file holds no entity span to learn from")
    serving = registry.promoted()
    extractor_config = replace(config.extractor, types=config.types)
    extractor = factory.train([example(item) for item in labelled], extractor_config)
    seen = forms(labelled)
    card = registry.publish(
        extractor.save,
        labels=list(config.types),
        task=TASK,
        kind=factory.name,
        training_args=extractor_config.to_dict(),
        counts={
            "train": len(labelled),
            "per_type": dict(sorted(per_type.items())),
            "forms": seen,
            "train_forms": seen,
            "train_origins": {SEED: len(labelled)},
        },
        parent=serving,
        notes=notes or f"{factory.name} seed model trained on {len(labelled)} document(s)",
    )
    logger.info("published entity seed %s trained on %d documents", card.version, len(labelled))
    if promote:
        registry.promote(card.version, expected=serving)
    return card


def score_entity_versions(
    labelled: Sequence[ResolvedLabel], registry: ModelRegistry, config: EntityRoundConfig
) -> TestSet:
    """Score every entity version (each on the types it was trained for) and the patterns
    on the current test set; return that test set."""
    items = [item for item in labelled if item.spans is not None]
    test = TestSet.of(split(items)[1])

    def score(version: str) -> Scores:
        types = registry.card(version).labels
        return version_scorer(registry, test, config, types)(version)

    baseline = None
    if config.patterns is not None:
        baseline = (PATTERNS, patterns_scorer(config.patterns, test, list(config.types)))
    rescore(registry, test, score, baseline=baseline)
    return test
