"""Seed and evaluation files: their labels join the label store (training, or test set)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from loop.classification.base import Classifier, ClassifierConfig, Target
from loop.errors import PointerMoved
from loop.labels import LabelStore
from loop.messages import Document
from loop.registry import ModelRegistry
from loop.testing.classifier import KeywordFactory
from loop.training.seed import seed_labels, train_and_publish
from loop.training.split import TEST_FILE, split


def docs() -> list[Document]:
    words = {"up": "stocks soar", "down": "market crash"}
    return [
        Document(id=f"s{i}", text=f"{words[label]} {i}", label=label)
        for i, label in enumerate(["up", "down"] * 20)
    ]


def test_seed_labels_join_the_store_once_and_count_as_seed(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "labels.db")
    unlabelled = Document(id="u1", text="no label here")
    assert seed_labels([*docs(), unlabelled], store, "classification") == 40
    assert seed_labels(docs(), store, "classification") == 0, "seeding twice adds nothing"
    resolved = LabelStore(store.path).labelled("classification")
    assert len(resolved) == 40 and {r.origin for r in resolved} == {"seed"}


def test_an_evaluation_file_joins_the_store_as_the_frozen_test_set(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "labels.db")
    seed_labels(docs()[:30], store, "classification")
    assert seed_labels(docs()[30:], store, "classification", origin=TEST_FILE) == 10
    train, test = split(LabelStore(store.path).labelled("classification"))
    assert {r.id for r in test} == {d.id for d in docs()[30:]}
    assert {r.origin for r in train} == {"seed"} and {r.origin for r in test} == {TEST_FILE}


def test_the_seed_model_trains_on_every_labelled_document(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "registry")
    card = train_and_publish([*docs(), Document(id="u", text="none")], KeywordFactory(), registry)
    assert card.counts["train"] == 40


class RollbackWhileTraining(KeywordFactory):
    """Trains like KeywordFactory; meanwhile, a person rolls the registry back."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry

    def train(
        self, texts: Sequence[str], labels: Sequence[Target], config: ClassifierConfig
    ) -> Classifier:
        ModelRegistry(self.registry.root).rollback()
        return super().train(texts, labels, config)


def test_a_promotion_made_while_training_is_not_undone(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "registry")
    first = train_and_publish(docs(), KeywordFactory(), registry, promote=True).version
    second = train_and_publish(docs(), KeywordFactory(), registry, promote=True).version
    assert registry.promotion().history == [first]

    with pytest.raises(PointerMoved, match=f"expected {second}, found {first}"):
        train_and_publish(docs(), RollbackWhileTraining(registry), registry, promote=True)

    assert registry.promoted() == first  # the rollback stands
    assert registry.latest() == "v0003"  # the new version is registered, not promoted
    assert registry.card("v0003").parent == second  # what served when training began
