"""Two classifier versions made by real training rounds (SetFit on the packaged MiniLM, head
only) on the shipped financial tweets, and a label store with more answers than they trained
on, some from two annotators; two entity versions scored on a test file: what the model
owners' page shows in its test and screenshots."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from loop.classification.base import ClassifierConfig
from loop.classification.setfit import SetFitFactory
from loop.datasets import DEFAULT_DATASET, read_tweets, take_per_label
from loop.entities.conll import read_labelled
from loop.entities.seed import file_types, score_entity_versions, seed_span_labels, train_seed
from loop.labels import LabelStore, ResolvedLabel
from loop.messages import Document, LabelEvent
from loop.registry import ModelRegistry
from loop.settings import Settings
from loop.testing.extractor import GazetteerFactory
from loop.training.gate import Gate
from loop.training.rounds import RoundConfig, run_round
from loop.training.split import EVALUATION, TEST_FILE
from tests.conftest import tagged_tweets_conll
from workers.train_round import entity_round_config

TEST_PER_LABEL = 12
ROUND_PER_LABEL = (4, 16)
"""Training labels per label of the first and the second round."""
LATER_PER_LABEL = 20
"""Labels in the store at the end, per label: the last ones are not trained on yet."""


def _answer(
    doc: Document, origin: str, annotator: str = "annotator", label: str = ""
) -> LabelEvent:
    return LabelEvent(
        id=doc.id,
        text=doc.text,
        label=label or str(doc.label),
        response_id=f"{doc.id}-{annotator}",
        annotator=annotator,
        origin=origin,
    )


def _answers() -> list[LabelEvent]:
    tweets = read_tweets(DEFAULT_DATASET)
    test = take_per_label(tweets[-600:], TEST_PER_LABEL)
    train = take_per_label(tweets[:600], LATER_PER_LABEL)
    events = [_answer(doc, EVALUATION) for doc in test]
    events += [_answer(doc, "uncertain") for doc in train]
    # A second annotator on three training documents: agrees twice, disagrees once.
    events += [_answer(doc, "uncertain", "second") for doc in train[:2]]
    events.append(
        _answer(
            train[2], "uncertain", "second", "Bearish" if train[2].label != "Bearish" else "Bullish"
        )
    )
    return events


def _first(labelled: list[ResolvedLabel], per_label: int) -> list[ResolvedLabel]:
    """The test documents and the first ``per_label`` training labels of each label."""
    counts: dict[str, int] = {}
    kept = []
    for item in labelled:
        label = str(item.label)
        if item.origin == EVALUATION or counts.get(label, 0) < per_label:
            counts[label] = counts.get(label, 0) + (item.origin != EVALUATION)
            kept.append(item)
    return kept


def make_two_versions(settings: Settings) -> ModelRegistry:
    """v0001 and v0002 in ``settings``' registry, by two rounds; the answers in its label
    store. v0001 is promoted; v0002 is promoted too if the gate let it through."""
    store = LabelStore(settings.labels_path)
    try:
        store.add(_answers())
        labelled = store.labelled()
    finally:
        store.close()
    registry = ModelRegistry(settings.registry_path)
    config = RoundConfig(gate=Gate(min_test_size=10), classifier=ClassifierConfig(num_iterations=2))
    for per_label in ROUND_PER_LABEL:
        result = run_round(_first(labelled, per_label), registry, SetFitFactory(), config)
        assert result.version is not None, result.skipped
    if registry.promoted() is None:
        registry.promote("v0001")
    return registry


ENTITY_ROUNDS = (10, 200)
"""Seed documents of the first and the second entity version."""


def make_entity_versions(settings: Settings, folder: Path) -> ModelRegistry:
    """v0001 and v0002 of the entity task, each a seed model (the gazetteer, which learns in
    milliseconds) trained on more pattern-tagged tweets than the one before, both promoted and
    scored on a test file of 40 tweets: what the page shows for entities."""
    seed = read_labelled(tagged_tweets_conll("train", 180, 20, folder / "entity-seed.conll"))
    test = read_labelled(tagged_tweets_conll("valid", 30, 10, folder / "entity-test.conll"))
    config = entity_round_config(settings)
    # Scored alone: the test file's spans are the patterns' own, which merged in would score 1.
    types = tuple(sorted({*config.types, *file_types(seed)}))
    config = replace(config, types=types, patterns=None)
    registry = ModelRegistry(settings.entity_registry_path)
    store = LabelStore(settings.labels_path)
    try:
        seed_span_labels(test, store, settings.entities.task, origin=TEST_FILE)
        for count in ENTITY_ROUNDS:
            train_seed(seed[:count], GazetteerFactory(), registry, config)
        score_entity_versions(store.labelled(settings.entities.task), registry, config)
    finally:
        store.close()
    return registry
