"""The entity tagger: the served version's spans and the pattern matches, merged."""

from __future__ import annotations

from pathlib import Path

import pytest

from loop.entities.base import Example, ExtractorConfig, make_span
from loop.entities.merge import MergeRule
from loop.entities.patterns import PatternExtractor
from loop.entities.serving import EntityTagger, ExtractorWatcher
from loop.messages import EntityMention
from loop.registry import ModelRegistry
from loop.testing.extractor import GazetteerFactory

TEXT = "USDJPY rallies as $AAPL soars after earnings beat; ETH flat"


def undertrained(root: Path) -> ExtractorWatcher:
    """A promoted version that calls USDJPY a stock and "earnings" one too, and knows no coin."""
    taught = "USDJPY and earnings"
    example = Example(
        taught, (make_span(taught, 0, 6, "STOCK"), make_span(taught, 11, 19, "STOCK"))
    )
    registry = ModelRegistry(root)
    extractor = GazetteerFactory().train([example], ExtractorConfig())
    card = registry.publish(extractor.save, labels=["STOCK"], task="entities", kind="gazetteer")
    registry.promote(card.version)
    watcher = ExtractorWatcher(registry)
    watcher.refresh()
    return watcher


def tagger(root: Path, rule: MergeRule = MergeRule.GAZETTEER_FIRST) -> EntityTagger:
    return EntityTagger(undertrained(root), PatternExtractor(), ("STOCK", "CRYPTO", "FOREX"), rule)


def found(mentions: list[EntityMention]) -> list[tuple[str, str, str | None]]:
    return [(m.text, m.label, m.source) for m in mentions]


def test_the_served_tags_are_the_model_and_the_patterns_merged(tmp_path: Path) -> None:
    entities = tagger(tmp_path)
    version, (tags,) = entities.tag([TEXT])
    assert version == "v0001"
    assert found(tags) == [
        ("USDJPY", "FOREX", "gazetteer"),
        ("$AAPL", "STOCK", "pattern"),
        ("earnings", "STOCK", "model"),
        ("ETH", "CRYPTO", "gazetteer"),
    ]
    (scanned,) = entities.scan(["d"], [TEXT])
    assert entities.tags(scanned) == tags, "the scorer serves what the API serves"
    assert [(s.text, s.label) for s in scanned.spans] == [
        ("USDJPY", "STOCK"),
        ("earnings", "STOCK"),
    ], "selection still sees the model's own spans (and so the conflict on USDJPY)"


def test_with_the_merge_off_the_model_answers_alone(tmp_path: Path) -> None:
    entities = tagger(tmp_path, MergeRule.OFF)
    _, (tags,) = entities.tag([TEXT])
    assert found(tags) == [("USDJPY", "STOCK", "model"), ("earnings", "STOCK", "model")]
    (scanned,) = entities.scan(["d"], [TEXT])
    assert entities.tags(scanned) == tags


def test_before_any_version_the_patterns_answer_and_say_so() -> None:
    entities = EntityTagger(None, PatternExtractor(), ("STOCK", "CRYPTO", "FOREX"))
    version, (tags,) = entities.tag([TEXT])
    assert version == "patterns"
    assert found(tags) == [
        ("USDJPY", "FOREX", "gazetteer"),
        ("$AAPL", "STOCK", "pattern"),
        ("ETH", "CRYPTO", "gazetteer"),
    ]


class Servable:
    """A transformer tagger's serving interface, recording the precision it is served in."""

    def __init__(self, bfloat16: bool) -> None:
        self.config = ExtractorConfig(bfloat16=bfloat16)
        self.served_in: list[object] = []
        self.calls: list[str] = []

    def serve_in(self, precision: object) -> None:
        self.served_in.append(precision)
        self.calls.append("serve_in")

    def predict(self, texts: list[str], batch_size: int = 32) -> list[list[object]]:
        self.calls.append("predict")
        return [[] for _ in texts]


def test_a_tagger_is_served_in_the_machines_precision_unless_its_version_says_float32(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loop.embeddings.precision import Precision
    from loop.entities import serving

    undertrained(tmp_path)  # a version to load
    for precision, bfloat16, expected in (
        (Precision.AUTO, True, [Precision.AUTO]),  # auto: this CPU's fastest (int8 with VNNI)
        (Precision.AUTO, False, []),  # the version keeps float32
        (Precision.FLOAT32, True, [Precision.FLOAT32]),
        (Precision.INT8, False, [Precision.INT8]),  # a setting other than auto is obeyed
    ):
        extractor = Servable(bfloat16)
        monkeypatch.setattr(serving, "load_extractor", lambda kind, path, chosen=extractor: chosen)
        watcher = ExtractorWatcher(ModelRegistry(tmp_path), precision)
        assert watcher.refresh()
        assert extractor.served_in == expected, (precision, bfloat16)
        assert extractor.calls[-1:] == ["predict"], "warmed up once served in its precision"
