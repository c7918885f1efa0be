"""Find the factory for a model kind, as recorded in a version's card."""

from __future__ import annotations

from loop.errors import ModelError
from loop.models.base import Classifier, ClassifierFactory
from loop.registry import ModelRegistry

KINDS = ("setfit", "keywords")


def factory_for(kind: str) -> ClassifierFactory:
    """The factory that trains and loads models of ``kind``; imports heavy code lazily."""
    if kind == "setfit":
        from loop.models.setfit_classifier import SetFitFactory

        return SetFitFactory()
    if kind == "keywords":
        from loop.testing import KeywordFactory

        return KeywordFactory()
    raise ModelError(f"unknown model kind {kind!r} (known: {', '.join(KINDS)})")


def load_version(registry: ModelRegistry, version: str) -> Classifier:
    """Load a registry version with the factory its card names."""
    card = registry.card(version)
    return factory_for(card.kind).load(registry.model_path(version))
