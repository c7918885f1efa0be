"""Find the extractor factory for a kind, as recorded in a version's card."""

from __future__ import annotations

from pathlib import Path

from loop.entities.base import EntityExtractor, ExtractorFactory
from loop.errors import ModelError

DEFAULT_KIND = "minilm-tagger"
"""The extractor trained when a task names none; chosen by measurement (docs/entities.md)."""

KINDS = ("minilm-tagger", "spacy-ner", "patterns", "gazetteer")


def factory_for(kind: str) -> ExtractorFactory:
    """The factory that trains and loads extractors of ``kind``; imports heavy code lazily."""
    if kind == "spacy-ner":
        from loop.entities.spacy_ner import SpacyNerFactory

        return SpacyNerFactory()
    if kind == "minilm-tagger":
        from loop.entities.transformer_tagger import TransformerTaggerFactory

        return TransformerTaggerFactory()
    if kind == "patterns":
        from loop.entities.patterns import PatternFactory

        return PatternFactory()
    if kind == "gazetteer":
        from loop.testing.extractor import GazetteerFactory

        return GazetteerFactory()
    raise ModelError(f"unknown extractor kind {kind!r} (known: {', '.join(KINDS)})")


def load_extractor(kind: str, path: Path) -> EntityExtractor:
    """Load a saved extractor of ``kind`` from the folder ``path``."""
    return factory_for(kind).load(path)
