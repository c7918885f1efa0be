"""Training rounds with the keyword fake: split, evaluation, registration and the gate."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from loop.labels import ResolvedLabel
from loop.models.base import Classifier, ClassifierConfig
from loop.registry import ModelRegistry
from loop.rounds import RoundConfig, run_round
from loop.split import in_test
from loop.testing import KeywordFactory
from tests.conftest import tweets

WORDS = {"up": ["soar", "rally", "gain", "jump"], "down": ["crash", "plunge", "drop", "slide"]}


def labelled(n: int, noisy: bool = False) -> list[ResolvedLabel]:
    items = []
    for i in range(n):
        label = "up" if i % 2 else "down"
        word = WORDS[label][i % 4]
        if noisy and i % 3 != 0 and not in_test(f"doc-{i}"):
            label = "down" if label == "up" else "up"  # two thirds of the training labels are wrong
        items.append(
            ResolvedLabel(
                f"doc-{i}",
                f"stocks {word} today {i}",
                "classification",
                label,
                "labelled",
                1.0,
                1,
                "random" if i % 5 == 0 else "uncertain",
            )
        )
    return items


def test_the_first_round_registers_evaluates_and_promotes(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "registry")
    items = labelled(100)
    result = run_round(items, registry, KeywordFactory(), RoundConfig())
    assert result.version == "v0001" and result.promoted
    assert registry.promoted() == "v0001"
    assert result.train_size + result.test_size == 100
    assert result.test_size == sum(in_test(i.id) for i in items)
    metrics = json.loads((registry.path("v0001") / "metrics.json").read_text())
    assert metrics["evaluation"]["test_size"] == result.test_size
    assert metrics["evaluation"]["macro"]["f1"] == result.macro_f1 == 1.0
    assert {p["id"] for p in metrics["predictions"]} == {i.id for i in items if in_test(i.id)}
    card = registry.card("v0001")
    assert card.counts["round"] == 1 and card.counts["train"] == result.train_size
    assert sum(card.counts["train_origins"].values()) == result.train_size


def test_a_worse_model_is_registered_but_not_promoted(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "registry")
    run_round(labelled(100), registry, KeywordFactory(), RoundConfig())
    worse = run_round(labelled(100, noisy=True), registry, KeywordFactory(), RoundConfig())
    assert worse.version == "v0002" and not worse.promoted
    assert registry.promoted() == "v0001"
    assert worse.base_macro_f1 == 1.0 and worse.macro_f1 is not None and worse.macro_f1 < 1.0
    assert any("macro-F1" in reason for reason in worse.reasons)
    metrics = json.loads((registry.path("v0002") / "metrics.json").read_text())
    assert metrics["base"]["version"] == "v0001"
    assert metrics["gate"]["passed"] is False


def test_one_class_is_not_enough_to_train(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "registry")
    only_up = [i for i in labelled(40) if i.label == "up"]
    result = run_round(only_up, registry, KeywordFactory(), RoundConfig())
    assert result.version is None and result.skipped and "distinct label" in result.skipped
    assert registry.versions() == []


def test_every_nth_round_fine_tunes_the_whole_model(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "registry")
    kinds = [
        run_round(
            labelled(60), registry, KeywordFactory(), RoundConfig(full_finetune_every=2)
        ).head_only
        for _ in range(4)
    ]
    assert kinds == [True, False, True, False]
    assert registry.card("v0002").training_args["freeze_body"] is False


class RecordingFactory(KeywordFactory):
    """The keyword fake under SetFit's name, remembering the body each round started from."""

    name = "setfit"

    def __init__(self) -> None:
        self.bodies: list[str | None] = []

    def train(
        self, texts: Sequence[str], labels: Sequence[str], config: ClassifierConfig
    ) -> Classifier:
        self.bodies.append(config.body)
        return super().train(texts, labels, config)


def test_head_only_rounds_keep_the_body_of_the_last_full_fine_tune(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "registry")
    factory = RecordingFactory()
    config = RoundConfig(full_finetune_every=2)
    for _ in range(4):
        run_round(labelled(60), registry, factory, config)

    # Round 1 starts on the packaged encoder; round 2 fine-tunes from scratch; round 3 refits
    # the head on v0002's body, round 4 fine-tunes again.
    assert factory.bodies == [None, None, str(registry.model_path("v0002")), None]
    assert [registry.card(v).training_args["body_version"] for v in registry.versions()] == [
        None,
        None,
        "v0002",
        None,
    ]
    assert registry.card("v0003").notes == "head refit on the frozen body of v0002"


def test_a_head_only_round_after_a_head_only_round_keeps_the_same_body(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "registry")
    factory = RecordingFactory()
    run_round(labelled(60), registry, factory, RoundConfig(full_finetune_every=1))
    for _ in range(2):
        run_round(labelled(60), registry, factory, RoundConfig(full_finetune_every=0))

    assert factory.bodies[1:] == [str(registry.model_path("v0001"))] * 2
    assert registry.card("v0003").training_args["body_version"] == "v0001"
    assert registry.card("v0003").training_args["body"] is None  # no folder in the card


def test_another_model_kind_is_never_used_as_a_body(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "registry")
    run_round(labelled(60), registry, KeywordFactory(), RoundConfig(full_finetune_every=1))
    factory = RecordingFactory()
    run_round(labelled(60), registry, factory, RoundConfig(full_finetune_every=0))

    assert factory.bodies == [None]


@pytest.mark.slow
def test_a_real_head_only_round_encodes_with_the_fine_tuned_body(
    setfit_registry: ModelRegistry,
) -> None:
    from loop.models.backbone import minilm_path
    from loop.models.setfit_classifier import SetFitFactory

    factory = SetFitFactory()
    items = [
        ResolvedLabel(d.id, d.text, "classification", str(d.label), "labelled", 1.0, 1, "random")
        for d in tweets(per_label=12)
    ]
    result = run_round(items, setfit_registry, factory, RoundConfig(full_finetune_every=0))

    assert result.head_only and result.version == "v0002"
    texts = ["$AAPL beats estimates", "Oil slides as inventories grow"]
    new = factory.load(setfit_registry.model_path("v0002")).embed(texts)
    tuned = factory.load(setfit_registry.model_path("v0001")).embed(texts)
    packaged = factory.train(
        ["up", "down"], ["a", "b"], ClassifierConfig(freeze_body=True, body=str(minilm_path()))
    )
    assert np.allclose(new, tuned, atol=1e-5)
    assert not np.allclose(new, packaged.embed(texts), atol=1e-3)  # type: ignore[attr-defined]


@pytest.mark.slow
def test_a_second_round_reuses_the_embeddings_and_predicts_the_same(
    setfit_registry: ModelRegistry, tmp_path: Path
) -> None:
    from loop.models.setfit_classifier import SetFitFactory

    items = [
        ResolvedLabel(d.id, d.text, "classification", str(d.label), "labelled", 1.0, 1, "random")
        for d in tweets(per_label=12)
    ]
    cached = SetFitFactory(cache_dir=tmp_path / "embeddings")
    config = RoundConfig(full_finetune_every=0)
    first = run_round(items, setfit_registry, cached, config)
    (file,) = (tmp_path / "embeddings").glob("*.npz")  # v0001's body: both rounds use it
    written = file.stat().st_mtime_ns
    with np.load(file) as data:
        assert len(data["keys"]) == len({item.text for item in items})
    second = run_round(items, setfit_registry, cached, config)

    assert file.stat().st_mtime_ns == written  # nothing new to encode, so nothing rewritten
    texts = [item.text for item in items]
    uncached = SetFitFactory().load(setfit_registry.model_path(str(second.version)))
    with_cache = cached.load(setfit_registry.model_path(str(second.version)))
    assert np.allclose(uncached.predict_proba(texts), with_cache.predict_proba(texts), atol=1e-5)
    assert first.macro_f1 == second.macro_f1
