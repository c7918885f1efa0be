"""The models the speed benchmarks serve: a seed SetFit classifier trained on a few tweets, and
a MiniLM entity tagger trained on financial tweets tagged by the patterns, each published and
promoted."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from loop.datasets import DEFAULT_DATASET, read_tweets, take_per_label
from loop.registry import ModelCard, ModelRegistry
from loop.settings import Settings

if TYPE_CHECKING:
    from loop.entities.base import Example


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


def financial_examples(csv: Path, with_spans: int, without: int) -> list[Example]:
    """Tweets of ``csv`` tagged as the demo's annotators accept the financial patterns'
    suggestions (cashtags, coins, currency pairs): the first ``with_spans`` in which the
    patterns find an entity and the first ``without`` in which they find none."""
    from loop.datasets import TWEET_LABELS
    from loop.entities.base import Example
    from loop.entities.patterns import PatternExtractor
    from loop.readers import Columns, Rejected, read_documents

    patterns = PatternExtractor()
    wanted = {True: with_spans, False: without}
    examples = []
    for doc in read_documents(csv, Columns(label_names=TWEET_LABELS)):
        if isinstance(doc, Rejected):
            continue
        found = patterns.matches(doc.text)
        if wanted[bool(found)] > 0:
            wanted[bool(found)] -= 1
            examples.append(Example(doc.text, tuple(found)))
        if not any(wanted.values()):
            break
    return examples


def entity_test_set(dataset: Path = DEFAULT_DATASET) -> list[Example]:
    """The tagger's test tweets: 300 with a financial entity and 100 without, from the
    validation file (the seed tagger trains on the training file's)."""
    return financial_examples(dataset / "sent_valid.csv", 300, 100)


def seed_tagger(
    registry: ModelRegistry, dataset: Path = DEFAULT_DATASET, time_budget_s: float = 120.0
) -> ModelCard:
    """A MiniLM tagger on 150 tweets of the training file with a financial entity and 50
    without (STOCK, CRYPTO and FOREX, as the patterns tag them), promoted in the entity
    registry ``registry``."""
    from loop.entities.base import ExtractorConfig
    from loop.entities.transformer_tagger import TransformerTaggerFactory

    examples = financial_examples(dataset / "sent_train.csv", 150, 50)
    config = ExtractorConfig(
        types=("STOCK", "CRYPTO", "FOREX"), epochs=3, time_budget_s=time_budget_s
    )
    print(f"training an entity tagger on {len(examples)} tweets ...", file=sys.stderr)
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
