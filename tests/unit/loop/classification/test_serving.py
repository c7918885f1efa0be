"""The model watcher: serves the promoted version, swaps on promote, survives broken versions."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from loop.classification.base import ClassifierConfig
from loop.classification.factories import factory_for, load_version
from loop.classification.serving import ModelWatcher, NewestWatcher, ReloadCheck, ServedModel
from loop.errors import ModelError
from loop.registry import ModelRegistry
from loop.testing.classifier import KeywordClassifier, KeywordFactory
from loop.testing.clock import ManualClock

MARKET = (
    ["stocks soar", "shares rally", "market crash", "prices plunge"],
    ["up", "up", "down", "down"],
)
WEATHER = (
    ["sunny warm day", "clear blue sky", "heavy rain", "storm and rain"],
    ["sun", "sun", "rain", "rain"],
)


def publish(
    registry: ModelRegistry, data: tuple[Sequence[str], Sequence[str]], kind: str = "keywords"
) -> str:
    clf = KeywordFactory().train(data[0], data[1], ClassifierConfig())
    return registry.publish(clf.save, labels=clf.labels, kind=kind).version


def top(watcher: ModelWatcher, text: str) -> str:
    served = watcher.served
    assert served is not None
    probs = served.classifier.predict_proba([text])
    return served.classifier.labels[int(np.argmax(probs[0]))]


def serving_the_first(
    registry: ModelRegistry, second_kind: str = "keywords"
) -> tuple[ModelWatcher, str, str]:
    """Two versions (market, then weather of ``second_kind``), the first promoted and served;
    the watcher and both versions."""
    v1, v2 = publish(registry, MARKET), publish(registry, WEATHER, kind=second_kind)
    registry.promote(v1)
    watcher = ModelWatcher(registry)
    watcher.refresh()
    return watcher, v1, v2


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "registry")


def test_nothing_promoted_serves_nothing(registry: ModelRegistry) -> None:
    publish(registry, MARKET)
    watcher = ModelWatcher(registry)
    assert watcher.refresh() is False
    assert watcher.served is None
    assert watcher.version is None


def test_refresh_loads_the_promoted_version(registry: ModelRegistry) -> None:
    v1 = publish(registry, MARKET)
    publish(registry, WEATHER)  # newer, but not promoted
    registry.promote(v1)
    watcher = ModelWatcher(registry)

    assert watcher.refresh() is True

    assert watcher.version == v1
    assert watcher.served is not None and watcher.served.version == v1
    assert watcher.served.classifier.labels == ["down", "up"]
    assert top(watcher, "stocks rally") == "up"
    assert top(watcher, "prices crash") == "down"


def test_refresh_without_a_change_keeps_the_loaded_model(registry: ModelRegistry) -> None:
    registry.promote(publish(registry, MARKET))
    watcher = ModelWatcher(registry)
    watcher.refresh()
    served = watcher.served
    assert watcher.refresh() is False
    assert watcher.refresh() is False
    assert watcher.served is served


def test_refresh_switches_on_promote_and_rollback(registry: ModelRegistry) -> None:
    watcher, v1, v2 = serving_the_first(registry)

    registry.promote(v2)
    assert watcher.refresh() is True
    assert watcher.version == v2
    assert top(watcher, "rain again") == "rain"

    registry.rollback()
    assert watcher.refresh() is True
    assert watcher.version == v1
    assert top(watcher, "shares soar") == "up"


def _corrupt_weights(registry: ModelRegistry, version: str) -> None:
    (registry.model_path(version) / "keywords.json").write_text('{"labels": ["a", "b"')


def _missing_weights(registry: ModelRegistry, version: str) -> None:
    (registry.model_path(version) / "keywords.json").unlink()


def _wrong_weights(registry: ModelRegistry, version: str) -> None:
    (registry.model_path(version) / "keywords.json").write_text('{"words": {}}')


def _corrupt_card(registry: ModelRegistry, version: str) -> None:
    (registry.path(version) / "card.json").write_text('{"version": "v00')


def _invalid_card(registry: ModelRegistry, version: str) -> None:
    (registry.path(version) / "card.json").write_text('{"version": "v0002"}')


@pytest.mark.parametrize(
    "damage",
    [_corrupt_weights, _missing_weights, _wrong_weights, _corrupt_card, _invalid_card],
)
def test_a_broken_version_is_skipped_and_the_previous_keeps_serving(
    registry: ModelRegistry, damage: object
) -> None:
    watcher, v1, v2 = serving_the_first(registry)
    served = watcher.served

    registry.promote(v2)
    damage(registry, v2)  # type: ignore[operator]

    assert watcher.refresh() is False
    assert watcher.served is served
    assert watcher.version == v1
    assert top(watcher, "stocks soar") == "up"
    assert watcher.refresh() is False  # and it does not retry the broken one on every call

    v3 = publish(registry, WEATHER)
    registry.promote(v3)
    assert watcher.refresh() is True
    assert watcher.version == v3


class Warming(ModelWatcher):
    """Records which version served while each warm-up ran; fails the warm-up of ``broken``."""

    def __init__(self, registry: ModelRegistry, broken: str | None = None) -> None:
        super().__init__(registry)
        self.broken = broken
        self.warmed: list[tuple[str, str | None]] = []

    def warm(self, loaded: ServedModel) -> None:
        self.warmed.append((loaded.version, self.version))
        if loaded.version == self.broken:
            raise RuntimeError("cannot compute")
        super().warm(loaded)


def test_a_new_version_is_warmed_up_while_the_one_before_serves(
    registry: ModelRegistry,
) -> None:
    v1, v2 = publish(registry, MARKET), publish(registry, WEATHER)
    registry.promote(v1)
    watcher = Warming(registry)
    assert watcher.refresh() and watcher.refresh() is False
    registry.promote(v2)
    assert watcher.refresh()
    assert watcher.warmed == [(v1, None), (v2, v1)]
    assert watcher.version == v2


def test_a_version_that_fails_its_warm_up_is_skipped(registry: ModelRegistry) -> None:
    v1, v2 = publish(registry, MARKET), publish(registry, WEATHER)
    registry.promote(v1)
    watcher = Warming(registry, broken=v2)
    watcher.refresh()
    served = watcher.served
    registry.promote(v2)

    assert watcher.refresh() is False
    assert watcher.served is served and watcher.version == v1
    assert watcher.refresh() is False
    assert watcher.warmed == [(v1, None), (v2, v1)], "the broken one is not retried each call"


def test_a_failed_version_is_retried_when_promoted_again(registry: ModelRegistry) -> None:
    watcher, _, v2 = serving_the_first(registry)
    weights = registry.model_path(v2) / "keywords.json"
    good = weights.read_text()
    registry.promote(v2)
    weights.write_text("{")  # unreadable for a while (a half-synced volume, say)
    assert watcher.refresh() is False

    registry.rollback()
    assert watcher.refresh() is False  # v1 still served
    weights.write_text(good)
    registry.promote(v2)
    assert watcher.refresh() is True
    assert watcher.version == v2


def test_a_version_of_unknown_kind_is_skipped(registry: ModelRegistry) -> None:
    watcher, v1, v2 = serving_the_first(registry, second_kind="mystery")
    registry.promote(v2)
    assert watcher.refresh() is False
    assert watcher.version == v1


def test_a_broken_first_version_serves_nothing(registry: ModelRegistry) -> None:
    v1 = publish(registry, MARKET)
    _corrupt_weights(registry, v1)
    registry.promote(v1)
    watcher = ModelWatcher(registry)
    assert watcher.refresh() is False
    assert watcher.served is None


def test_an_unreadable_pointer_keeps_the_model_serving(registry: ModelRegistry) -> None:
    registry.promote(publish(registry, MARKET))
    watcher = ModelWatcher(registry)
    watcher.refresh()
    registry.pointer.write_text("not json")
    assert watcher.refresh() is False
    assert watcher.version == "v0001"


def test_a_removed_pointer_stops_serving(registry: ModelRegistry) -> None:
    registry.promote(publish(registry, MARKET))
    watcher = ModelWatcher(registry)
    watcher.refresh()
    registry.pointer.unlink()
    assert watcher.refresh() is True
    assert watcher.served is None


def test_load_version_uses_the_kind_on_the_card(registry: ModelRegistry) -> None:
    v1 = publish(registry, MARKET)
    clf = load_version(registry, v1)
    assert isinstance(clf, KeywordClassifier)
    assert clf.labels == ["down", "up"]


def test_factory_for_known_and_unknown_kinds() -> None:
    assert isinstance(factory_for("keywords"), KeywordFactory)
    assert factory_for("keywords").name == "keywords"
    with pytest.raises(ModelError, match="unknown model kind 'mystery'"):
        factory_for("mystery")


def test_the_core_imports_without_torch_or_setfit() -> None:
    code = (
        "import sys, loop.classification.serving, loop.classification.factories, loop.registry, loop.readers, "
        "loop.messages, loop.settings, loop.testing.classifier\n"
        "heavy = sorted(m for m in ('torch', 'setfit', 'sentence_transformers', 'transformers') "
        "if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_reload_check_is_due_every_interval_and_at_once_after_a_wake() -> None:
    clock = ManualClock()
    check = ReloadCheck(600, clock=clock)
    assert not check.due()
    clock.advance(599)
    assert not check.due()
    clock.advance(1)
    assert check.due() and not check.due(), "due once, then an interval away again"

    clock.advance(5)
    check.wake()  # a model event
    assert check.due() and not check.due(), "one wake, one check"
    clock.advance(599)
    assert not check.due(), "the wake's check restarted the interval"
    check.wake()
    check.wake()
    assert check.due() and not check.due(), "wakes before a check make one check"


@pytest.mark.slow
def test_a_setfit_version_serves_in_the_precision_it_is_given(
    setfit_registry: ModelRegistry,
) -> None:
    """bfloat16 (emulated where the CPU lacks it) and int8 stay close to float32, and in
    every precision a text gets the same probabilities alone as among others."""
    from loop.embeddings.precision import Precision
    from tests.conftest import tweets

    texts = [d.text for d in tweets("valid", limit=12)]
    served = {}
    for precision in (Precision.FLOAT32, Precision.BFLOAT16, Precision.INT8):
        watcher = ModelWatcher(setfit_registry, precision)
        watcher.refresh()
        assert watcher.served is not None
        served[precision] = watcher.served.classifier
        assert served[precision].precision is precision
        if precision is not Precision.FLOAT32:  # the warm-up built the fast copy at load
            assert served[precision]._serving_body is not None  # type: ignore[attr-defined]
        together = served[precision].predict_proba(texts, batch_size=5)
        alone = np.concatenate([served[precision].predict_proba([t]) for t in texts])
        assert np.array_equal(together, alone)
    newest = NewestWatcher(setfit_registry, Precision.INT8)
    newest.refresh()
    assert newest.served is not None
    assert newest.served.classifier._serving_body is None, "selection uses its head alone"  # type: ignore[attr-defined]
    exact = served[Precision.FLOAT32].predict_proba(texts)
    for precision, within in ((Precision.BFLOAT16, 0.02), (Precision.INT8, 0.05)):
        fast = served[precision].predict_proba(texts)
        assert np.abs(fast - exact).max() < within, precision
        assert not np.array_equal(fast, exact), precision  # it did compute as it says
