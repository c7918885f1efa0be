"""An in-process fake extractor for tests: a gazetteer learned from the training spans.

It remembers every labelled surface form and tags its whole-word occurrences, scored by the
share of that form's labelled occurrences that carried the type. It saves to JSON and loads
back, so registry, scorer, selection and API code can be tested without torch or spaCy.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

from loop.entities.base import (
    Example,
    ExtractorConfig,
    Span,
    check_examples,
    ensure_empty_folder,
    entity_types,
)
from loop.errors import ModelError

META_FILE = "gazetteer.json"


class GazetteerExtractor:
    """Tags known surface forms (case-sensitive, whole words); longest match wins."""

    def __init__(
        self, types: list[str], forms: dict[str, dict[str, float]], threshold: float = 0.5
    ) -> None:
        self._types = types
        self._forms = forms  # surface form -> {type: share of labelled occurrences}
        self.threshold = threshold
        ordered = sorted(forms, key=len, reverse=True)
        self._pattern = (
            re.compile(r"(?<!\w)(" + "|".join(re.escape(f) for f in ordered) + r")(?!\w)")
            if ordered
            else None
        )

    @property
    def types(self) -> list[str]:
        return list(self._types)

    def _all(self, text: str) -> list[Span]:
        if self._pattern is None:
            return []
        found = []
        for match in self._pattern.finditer(text):
            label, share = max(self._forms[match.group(0)].items(), key=lambda kv: kv[1])
            found.append(Span(match.start(), match.end(), label, match.group(0), share))
        return found

    def predict(self, texts: Sequence[str], batch_size: int = 32) -> list[list[Span]]:
        return [[s for s in self._all(t) if s.score >= self.threshold] for t in texts]

    def near_misses(self, texts: Sequence[str], batch_size: int = 32) -> list[list[Span]]:
        return [[s for s in self._all(t) if s.score < self.threshold] for t in texts]

    def save(self, path: Path) -> None:
        ensure_empty_folder(path)
        path.mkdir(parents=True, exist_ok=True)
        payload = {"types": self._types, "forms": self._forms, "threshold": self.threshold}
        (path / META_FILE).write_text(json.dumps(payload, ensure_ascii=False))


class GazetteerFactory:
    """Factory for :class:`GazetteerExtractor`; ``name`` is what model cards record."""

    name = "gazetteer"

    def train(self, examples: Sequence[Example], config: ExtractorConfig) -> GazetteerExtractor:
        types = entity_types(examples, config)
        check_examples(examples, types)
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for example in examples:
            for span in example.spans:
                counts[span.text][span.label] += 1
        forms = {
            form: {label: n / sum(by_type.values()) for label, n in by_type.items()}
            for form, by_type in counts.items()
        }
        return GazetteerExtractor(types, forms, config.threshold)

    def load(self, path: Path) -> GazetteerExtractor:
        try:
            payload = json.loads((path / META_FILE).read_text(encoding="utf-8"))
            return GazetteerExtractor(
                list(payload["types"]), dict(payload["forms"]), float(payload["threshold"])
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"cannot load the gazetteer in {path}: {exc}") from exc
