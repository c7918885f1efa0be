"""The models the speed benchmarks serve: a seed SetFit classifier trained on a few tweets, and
a MiniLM entity tagger trained on WNUT-17 sentences, each published and promoted."""

from __future__ import annotations

import sys
from pathlib import Path

from loop.datasets import DEFAULT_DATASET, read_tweets, take_per_label
from loop.registry import ModelCard, ModelRegistry
from loop.settings import Settings

WNUT17 = DEFAULT_DATASET.parent / "wnut17"


def seed_classifier(registry: ModelRegistry, dataset: Path = DEFAULT_DATASET) -> ModelCard:
    """A SetFit model on 8 tweets per class (2 iterations), promoted in ``registry``."""
    from loop.classification.base import ClassifierConfig
    from loop.classification.setfit import SetFitFactory
    from loop.training.seed import train_and_publish

    seed = take_per_label(read_tweets(dataset), 8)
    print(f"training a seed classifier on {len(seed)} tweets ...", file=sys.stderr)
    return train_and_publish(
        seed, SetFitFactory(), registry, ClassifierConfig(num_iterations=2), promote=True
    )


def seed_tagger(
    registry: ModelRegistry, sentences: int = 300, time_budget_s: float = 120.0
) -> ModelCard:
    """A MiniLM tagger on the first ``sentences`` of WNUT-17's training file, promoted in the
    entity registry ``registry`` (its types are WNUT-17's)."""
    from loop.entities.base import ExtractorConfig
    from loop.entities.conll import read_examples
    from loop.entities.transformer_tagger import TransformerTaggerFactory

    examples = read_examples(WNUT17 / "wnut17train.conll")[:sentences]
    config = ExtractorConfig(epochs=2, learning_rate=3e-4, time_budget_s=time_budget_s)
    print(f"training an entity tagger on {len(examples)} sentences ...", file=sys.stderr)
    tagger = TransformerTaggerFactory().train(examples, config)
    card = registry.publish(
        tagger.save,
        labels=tagger.types,
        task="entities",
        kind=TransformerTaggerFactory.name,
        training_args=config.to_dict(),
        counts={"train": len(examples), "per_type": {}, "forms": []},
    )
    registry.promote(card.version)
    return card


def in_folder(settings: Settings, home: Path, entities: bool) -> Settings:
    """``settings`` with their home and registries in ``home`` and the entity task on or off."""
    return settings.model_copy(
        update={
            "home": home,
            "registry_dir": home / "registry",
            "entities": settings.entities.model_copy(update={"enabled": entities}),
        }
    )
