"""Training rounds with the keyword fake: split, evaluation, registration and the gate."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from loop.classification.base import Classifier, ClassifierConfig
from loop.evaluation.curves import curves
from loop.labels import ResolvedLabel
from loop.messages import Document
from loop.registry import ModelRegistry
from loop.testing.classifier import KeywordFactory
from loop.training.gate import Gate
from loop.training.rounds import RoundConfig, RoundResult, run_round
from loop.training.seed import train_and_publish
from loop.training.split import EVALUATION, TEST_FILE
from tests.conftest import tweets

WORDS = {"up": ["soar", "rally", "gain", "jump"], "down": ["crash", "plunge", "drop", "slide"]}
GATE = Gate(min_test_size=10)


def origin(i: int) -> str:
    """Every fifth document came from the evaluation sample; the others were selected."""
    return EVALUATION if i % 5 == 0 else "uncertain"


def labelled(n: int, noisy: bool = False, start: int = 0) -> list[ResolvedLabel]:
    items = []
    for i in range(start, start + n):
        label = "up" if i % 2 else "down"
        word = WORDS[label][i % 4]
        if noisy and i % 3 != 0 and origin(i) != EVALUATION:
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
                origin(i),
            )
        )
    return items


def test_the_first_round_registers_evaluates_and_promotes(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "registry")
    items = labelled(100)
    result = run_round(items, registry, KeywordFactory(), RoundConfig(gate=GATE))
    assert result.version == "v0001" and result.promoted
    assert registry.promoted() == "v0001"
    assert result.train_size + result.test_size == 100
    assert result.test_size == 20 and result.test_origins == {EVALUATION: 20}
    metrics = json.loads((registry.path("v0001") / "metrics.json").read_text())
    assert metrics["evaluation"]["test_size"] == result.test_size
    assert metrics["evaluation"]["test_origins"] == {EVALUATION: 20}
    assert metrics["test_set"]["size"] == 20
    assert metrics["evaluation"]["macro"]["f1"] == result.macro_f1 == 1.0
    card = registry.card("v0001")
    assert card.counts["round"] == 1 and card.counts["train"] == result.train_size
    assert card.counts["train_origins"] == {"uncertain": 80}


def test_selected_documents_are_trained_on_and_only_the_evaluation_sample_is_tested(
    tmp_path: Path,
) -> None:
    registry = ModelRegistry(tmp_path / "registry")
    items = labelled(100)
    for picked in ("seed", "random", "rare", "cold-start", TEST_FILE):
        items.append(replace(items[1], id=f"{picked}-doc", origin=picked))
    run_round(items, registry, KeywordFactory(), RoundConfig(gate=GATE))

    tested = {
        p["id"]
        for p in json.loads((registry.path("v0001") / "metrics.json").read_text())["predictions"]
    }
    assert tested == {i.id for i in items if i.origin in (EVALUATION, TEST_FILE)}
    assert "test-file-doc" in tested and "uncertain" not in {
        i.origin for i in items if i.id in tested
    }
    assert registry.card("v0001").counts["train"] == 80 + 4  # seed, random, rare, cold-start


def test_a_worse_model_is_registered_but_not_promoted(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "registry")
    run_round(labelled(100), registry, KeywordFactory(), RoundConfig(gate=GATE))
    worse = run_round(labelled(100, noisy=True), registry, KeywordFactory(), RoundConfig(gate=GATE))
    assert worse.version == "v0002" and not worse.promoted
    assert registry.promoted() == "v0001"
    assert worse.base_macro_f1 == 1.0 and worse.macro_f1 is not None and worse.macro_f1 < 1.0
    assert worse.delta is not None and worse.delta.ci_high < 0
    assert any("not above the 1.000 of v0001" in reason for reason in worse.reasons)
    metrics = json.loads((registry.path("v0002") / "metrics.json").read_text())
    assert metrics["gate"]["passed"] is False and metrics["gate"]["baseline"] == "v0001"


def test_the_first_round_must_beat_the_serving_seed_model(tmp_path: Path) -> None:
    """A seed model serves (alloop train): no "nothing promoted yet" pass; the round's
    version is judged against the seed, which is scored on the same test set."""
    registry = ModelRegistry(tmp_path / "registry")
    seed_docs = [Document(id=i.id, text=i.text, label=i.label) for i in labelled(100)]
    train_and_publish(seed_docs, KeywordFactory(), registry, promote=True)

    same = run_round(labelled(100), registry, KeywordFactory(), RoundConfig(gate=GATE))
    assert not same.promoted and same.baseline == "v0001" and same.base_macro_f1 == 1.0
    assert same.rescored == ["v0001"]
    assert any("not above the 1.000 of v0001" in reason for reason in same.reasons)
    seed = registry.card("v0001").metrics or {}
    assert seed["evaluation"]["test_size"] == 20  # the seed has its point on the curve


def test_a_clearly_better_version_beats_a_bad_seed(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "registry")
    bad = [Document(id=i.id, text=i.text, label=i.label) for i in labelled(100, noisy=True)]
    train_and_publish(bad, KeywordFactory(), registry, promote=True)

    better = run_round(labelled(100), registry, KeywordFactory(), RoundConfig(gate=GATE))
    assert better.promoted and registry.promoted() == "v0002"
    assert better.delta is not None and better.delta.ci_low > 0
    assert "against v0001 on 20 test documents" in better.reasons[0]


def test_a_test_set_too_small_decides_nothing(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "registry")
    result = run_round(labelled(40), registry, KeywordFactory(), RoundConfig(gate=GATE))
    assert result.version == "v0001" and not result.promoted  # 8 test documents, 10 needed
    assert "too few to decide anything" in result.reasons[0]
    assert registry.promoted() is None


def test_a_serving_version_that_cannot_be_scored_blocks_the_promotion(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "registry")
    run_round(labelled(100), registry, KeywordFactory(), RoundConfig(gate=GATE))
    (registry.model_path("v0001") / "keywords.json").write_text("not json")
    result = run_round(labelled(105), registry, KeywordFactory(), RoundConfig(gate=GATE))
    assert not result.promoted and registry.promoted() == "v0001"
    assert result.reasons == ["the serving v0001 could not be scored on the test set"]


def test_earlier_versions_are_scored_again_when_the_test_set_grows(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "registry")
    run_round(labelled(100), registry, KeywordFactory(), RoundConfig(gate=GATE))
    before = (registry.card("v0001").metrics or {})["test_set"]
    second = run_round(labelled(150), registry, KeywordFactory(), RoundConfig(gate=GATE))

    assert second.rescored == ["v0001"]
    after = [(registry.card(v).metrics or {})["test_set"] for v in ("v0001", "v0002")]
    assert before["size"] == 20 and after[0] == after[1] and after[0]["size"] == 30
    points = curves(registry, ["macro_f1"])[0].points
    assert [(p.version, p.test_size) for p in points] == [("v0001", 30), ("v0002", 30)]
    third = run_round(labelled(150), registry, KeywordFactory(), RoundConfig(gate=GATE))
    assert third.rescored == []  # the same test set: nothing to score again


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


def promote(result: RoundResult, registry: ModelRegistry) -> None:
    """Promote a round's version as a person would (same data each round: the gate would
    find no gain); the body tests are about which body a round starts from."""
    registry.promote(str(result.version))


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
        promote(run_round(labelled(60), registry, factory, config), registry)

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
    promote(
        run_round(labelled(60), registry, factory, RoundConfig(full_finetune_every=1)), registry
    )
    for _ in range(2):
        promote(
            run_round(labelled(60), registry, factory, RoundConfig(full_finetune_every=0)), registry
        )

    assert factory.bodies[1:] == [str(registry.model_path("v0001"))] * 2
    assert registry.card("v0003").training_args["body_version"] == "v0001"
    assert registry.card("v0003").training_args["body"] is None  # no folder in the card


def test_another_model_kind_is_never_used_as_a_body(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "registry")
    promote(
        run_round(labelled(60), registry, KeywordFactory(), RoundConfig(full_finetune_every=1)),
        registry,
    )
    factory = RecordingFactory()
    run_round(labelled(60), registry, factory, RoundConfig(full_finetune_every=0))

    assert factory.bodies == [None]


@pytest.mark.slow
def test_a_real_head_only_round_encodes_with_the_fine_tuned_body(
    setfit_registry: ModelRegistry,
) -> None:
    from loop.classification.setfit import SetFitFactory
    from loop.embeddings.backbone import minilm_path

    factory = SetFitFactory()
    items = [
        ResolvedLabel(d.id, d.text, "classification", str(d.label), "labelled", 1.0, 1, origin(i))
        for i, d in enumerate(tweets(per_label=12))
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
    from loop.classification.setfit import SetFitFactory

    items = [
        ResolvedLabel(d.id, d.text, "classification", str(d.label), "labelled", 1.0, 1, origin(i))
        for i, d in enumerate(tweets(per_label=12))
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


def test_a_rollback_made_while_a_round_runs_is_not_undone(tmp_path: Path) -> None:
    from tests.unit.loop.training.test_seed import RollbackWhileTraining

    registry = ModelRegistry(tmp_path / "registry")
    bad = [Document(id=i.id, text=i.text, label=i.label) for i in labelled(100, noisy=True)]
    train_and_publish(bad, KeywordFactory(), registry, promote=True)
    train_and_publish(bad, KeywordFactory(), registry, promote=True)
    assert registry.promoted() == "v0002"

    result = run_round(
        labelled(100), registry, RollbackWhileTraining(registry), RoundConfig(gate=GATE)
    )
    assert result.version == "v0003" and not result.promoted
    assert registry.promoted() == "v0001"  # the person's rollback stands
    assert any("the promoted pointer moved" in reason for reason in result.reasons)
