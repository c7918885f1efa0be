"""What the scorer is made of, built from the settings: its selection rounds (classes and
entities), the entity tagger, and the labelled counts behind a version that class balance
and the cold start read. :mod:`workers.scorer` puts them together per batch."""

from __future__ import annotations

from collections.abc import Callable

from loop.classification.serving import NewestWatcher
from loop.drift.monitor import DriftMonitor
from loop.entities.selection import EntitySelectionConfig
from loop.entities.serving import EntityTagger, ExtractorWatcher, load_patterns
from loop.errors import AlloopError
from loop.registry import ModelRegistry
from loop.selection.base import SelectionConfig
from loop.selection.windows import CandidateRounds, EntityRounds, NewestModel
from loop.settings import Settings


def candidate_rounds(settings: Settings, drift: DriftMonitor | None) -> CandidateRounds:
    """The classifier's selection windows; with ``drift``, its drifted documents are favoured."""
    config = settings.scorer
    newest = None
    if config.select_with_newest:
        registry = ModelRegistry(settings.registry_path)
        newest = NewestModel(NewestWatcher(registry, settings.precision), registry)
    return CandidateRounds(
        selection_config(settings),
        config.window_size,
        config.round_size,
        labelled_counts(settings),
        newest,
        drift.drifted_from if drift else None,
        settings.drift.selection_share,
    )


def entity_rounds(settings: Settings, tagger: EntityTagger) -> EntityRounds:
    """The entity task's selection windows, ranking with what ``tagger`` found."""
    config, task = settings.scorer, settings.entities
    return EntityRounds(
        task.task,
        tagger,
        EntitySelectionConfig(
            batch_size=task.candidates_per_round,
            uncertain_below=task.uncertain_below,
            rare_below=task.rare_below,
            random_fraction=config.random_fraction,
        ),
        config.window_size,
        config.round_size,
    )


UNKNOWN_COUNT = 1_000_000


def entity_tagger(settings: Settings) -> EntityTagger:
    """The entity task's tagger: the entity registry's promoted version, and the patterns."""
    task = settings.entities
    watcher = ExtractorWatcher(ModelRegistry(settings.entity_registry_path), settings.precision)
    watcher.refresh()
    patterns = load_patterns(task.gazetteers) if task.patterns else None
    return EntityTagger(watcher, patterns, tuple(task.types), task.merge)


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
