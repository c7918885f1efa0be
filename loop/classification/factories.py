"""Find the factory for a model kind, as recorded in a version's card."""

from __future__ import annotations

from pathlib import Path

from loop.classification.base import Classifier, ClassifierFactory
from loop.embeddings.precision import Precision
from loop.errors import ModelError
from loop.registry import ModelRegistry

KINDS = ("setfit", "keywords")


def factory_for(
    kind: str, cache_dir: Path | None = None, precision: Precision = Precision.FLOAT32
) -> ClassifierFactory:
    """The factory that trains and loads models of ``kind``; imports heavy code lazily.
    ``cache_dir``: where SetFit keeps embeddings between rounds (the trainer's);
    ``precision``: what the models it loads compute in (serving's ``ALLOOP_PRECISION``)."""
    if kind == "setfit":
        from loop.classification.setfit import SetFitFactory

        return SetFitFactory(cache_dir=cache_dir, precision=precision)
    if kind == "keywords":
        from loop.testing.classifier import KeywordFactory

        return KeywordFactory()
    raise ModelError(f"unknown model kind {kind!r} (known: {', '.join(KINDS)})")


def load_version(
    registry: ModelRegistry,
    version: str,
    factory: ClassifierFactory | None = None,
    precision: Precision = Precision.FLOAT32,
) -> Classifier:
    """Load a registry version with the factory its card names (``factory`` if it is of that
    kind, e.g. the round's own, which shares its embedding cache; else one computing in
    ``precision``)."""
    card = registry.card(version)
    if factory is None or factory.name != card.kind:
        factory = factory_for(card.kind, precision=precision)
    return factory.load(registry.model_path(version))
