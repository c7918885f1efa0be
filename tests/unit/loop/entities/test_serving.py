"""The entity tagger: the served version's spans and the pattern matches, merged."""

from __future__ import annotations

from pathlib import Path

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
