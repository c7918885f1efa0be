"""The entity extractor that serves now, and what the scorer and the API make of a text.

The promoted version of the entity registry serves. Before any version exists, the task's
patterns do (cold start): their matches are the tags and the pre-annotations people accept or
correct. Patterns also keep running beside a trained model: their matches are merged into the
served tags (:mod:`loop.entities.merge`), so a known pair or coin is not lost to an
undertrained version, and a pattern hit whose text was never labelled is how an unseen
currency pair or coin reaches people.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from loop.classification.serving import WARM_UP_TEXT, Watcher
from loop.embeddings.precision import Precision
from loop.entities.base import EntityExtractor, Span, analyse
from loop.entities.factories import load_extractor
from loop.entities.merge import MergeRule, merge
from loop.entities.patterns import Gazetteers, PatternExtractor
from loop.entities.selection import EntityScored
from loop.errors import ConfigError
from loop.messages import EntityMention
from loop.registry import ModelRegistry

PATTERNS_VERSION = "patterns"
"""The version name tags carry while the patterns serve alone."""


@dataclass(frozen=True)
class ServedExtractor:
    """A loaded extractor, its version and what it was taught."""

    version: str
    extractor: EntityExtractor
    seen: frozenset[str] = frozenset()
    """Surface forms of every labelled span behind this version (see ``surface_form``)."""
    per_type: dict[str, int] = field(default_factory=dict)
    """Labelled spans per type behind this version."""


class ExtractorWatcher(Watcher[ServedExtractor]):
    """The promoted entity extractor, reloaded when the entity registry's pointer moves."""

    what = "entity model"

    def __init__(self, registry: ModelRegistry, precision: Precision = Precision.AUTO) -> None:
        """``precision``: what a transformer tagger tags in; ``auto`` is this CPU's fastest
        (:func:`loop.embeddings.precision.resolved`), unless the version says float32
        (``ExtractorConfig.bfloat16`` false, or dynamic quantization)."""
        super().__init__(registry)
        self._precision = precision

    def load(self, version: str) -> ServedExtractor:
        card = self._registry.card(version)
        extractor = load_extractor(card.kind, self._registry.model_path(version))
        serve_in = getattr(extractor, "serve_in", None)
        fast = bool(getattr(getattr(extractor, "config", None), "bfloat16", False))
        if serve_in is not None and (self._precision is not Precision.AUTO or fast):
            serve_in(self._precision)
        forms = card.counts.get("forms") or []
        per_type = card.counts.get("per_type") or {}
        return ServedExtractor(
            version=version,
            extractor=extractor,
            seen=frozenset(str(f) for f in forms),
            per_type={str(k): int(v) for k, v in per_type.items()},
        )

    def warm(self, loaded: ServedExtractor) -> None:
        loaded.extractor.predict([WARM_UP_TEXT])


def load_patterns(gazetteers: Path | None) -> PatternExtractor:
    """The financial patterns, with the task's own gazetteers when a JSON file is given."""
    if gazetteers is None:
        return PatternExtractor()
    try:
        data = json.loads(gazetteers.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the gazetteers {gazetteers}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{gazetteers} must hold a JSON object (traded, currencies, crypto)")
    return PatternExtractor(Gazetteers.from_dict(data))


def mention(span: Span) -> EntityMention:
    return EntityMention(
        label=span.label,
        start=span.start,
        end=span.end,
        text=span.text,
        score=round(min(1.0, max(0.0, float(span.score))), 6),
        source=span.source or None,
    )


@dataclass
class EntityTagger:
    """Tags texts with the served extractor and the patterns, merged by ``rule``
    (:mod:`loop.entities.merge`), or with the patterns alone before any version."""

    watcher: ExtractorWatcher | None
    patterns: PatternExtractor | None
    types: Sequence[str] = ()
    rule: MergeRule = MergeRule.GAZETTEER_FIRST

    @property
    def version(self) -> str | None:
        served = self.watcher.served if self.watcher else None
        if served is not None:
            return served.version
        return PATTERNS_VERSION if self.patterns is not None else None

    @property
    def served(self) -> ServedExtractor | None:
        return self.watcher.served if self.watcher else None

    def seen_forms(self) -> frozenset[str]:
        """The surface forms people labelled for the served version (none before one)."""
        served = self.served
        return served.seen if served is not None else frozenset()

    def _matches(self, text: str) -> list[Span]:
        """The pattern matches of the task's types (all, near misses included)."""
        if self.patterns is None:
            return []
        wanted = set(self.types)
        return [s for s in self.patterns.matches(text) if not wanted or s.label in wanted]

    def scan(
        self, ids: Sequence[str], texts: Sequence[str], batch_size: int = 32
    ) -> list[EntityScored]:
        """What the extractor and the patterns find in each text, apart (selection compares
        them); :meth:`tags` makes the served entities of it."""
        served = self.served
        analysed = (
            analyse(served.extractor, texts, batch_size)
            if served is not None
            else [([], []) for _ in texts]
        )
        # The model's types are what it was trained on; the patterns answer for the task's.
        return [
            EntityScored(doc_id, text, tuple(spans), tuple(near), tuple(self._matches(text)))
            for doc_id, text, (spans, near) in zip(ids, texts, analysed, strict=True)
        ]

    def tag(
        self, texts: Sequence[str], batch_size: int = 32
    ) -> tuple[str | None, list[list[EntityMention]]]:
        """The version that answered and the entities of each text, for callers that need no
        selection (the API): the same entities as :meth:`tags` gives the scorer. One
        extractor answers the whole call, even if a reload happens."""
        served = self.served
        if served is None:
            if self.patterns is None:
                return None, [[] for _ in texts]
            return PATTERNS_VERSION, [self._serve(None, self._matches(text)) for text in texts]
        found = served.extractor.predict(texts, batch_size)
        merging = self.rule is not MergeRule.OFF  # else the matches are not served: skip them
        return served.version, [
            self._serve(spans, self._matches(text) if merging else [])
            for text, spans in zip(texts, found, strict=True)
        ]

    def tags(self, scanned: EntityScored) -> list[EntityMention]:
        """The entities a document is tagged with: the served version's spans and the
        confident pattern matches merged, or the confident matches while no version serves."""
        return self._serve(scanned.spans if self.served is not None else None, scanned.matches)

    def _serve(self, model: Sequence[Span] | None, matches: Sequence[Span]) -> list[EntityMention]:
        """``model`` is None while no version serves: the confident matches are the tags."""
        threshold = self.patterns.threshold if self.patterns is not None else 1.0
        confident = [s for s in matches if s.score >= threshold]
        # The matches alone are what either rule serves when no version does.
        spans = merge([], confident) if model is None else merge(model, confident, self.rule)
        return [mention(s) for s in spans]
