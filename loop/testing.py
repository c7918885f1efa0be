"""In-process fakes for tests: a tiny, deterministic classifier with the real contract.

The fake learns which words go with which label and scores texts by word overlap. It saves
to JSON and loads back, so registry, scorer and API code can be tested without torch.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from loop.errors import ModelError
from loop.models.base import Classifier, ClassifierConfig

_WORD = re.compile(r"\w+", re.UNICODE)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class KeywordClassifier:
    """Scores labels by how many of a text's words were seen with each label."""

    def __init__(self, labels: list[str], vocab: dict[str, dict[str, int]]) -> None:
        self._labels = labels
        self._vocab = vocab
        self.calls = 0

    @property
    def labels(self) -> list[str]:
        return list(self._labels)

    def predict_proba(self, texts: Sequence[str], batch_size: int = 64) -> npt.NDArray[np.float32]:
        self.calls += 1
        scores = np.ones((len(texts), len(self._labels)), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _words(text):
                for col, label in enumerate(self._labels):
                    scores[row, col] += self._vocab.get(word, {}).get(label, 0)
        return scores / scores.sum(axis=1, keepdims=True)

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=False)
        payload = {"labels": self._labels, "vocab": self._vocab}
        (path / "keywords.json").write_text(json.dumps(payload))


class KeywordFactory:
    """Factory for :class:`KeywordClassifier`; ``name`` is what model cards record."""

    name = "keywords"

    def train(
        self, texts: Sequence[str], labels: Sequence[str], config: ClassifierConfig
    ) -> Classifier:
        names = sorted(set(labels))
        if len(names) < 2:
            raise ModelError(f"need at least two labels to train, got {names}")
        vocab: dict[str, Counter[str]] = defaultdict(Counter)
        for text, label in zip(texts, labels, strict=True):
            for word in set(_words(text)):
                vocab[word][label] += 1
        return KeywordClassifier(names, {word: dict(c) for word, c in vocab.items()})

    def load(self, path: Path) -> KeywordClassifier:
        file = path / "keywords.json"
        if not file.is_file():
            raise ModelError(f"{path} holds no keyword model")
        try:
            payload = json.loads(file.read_text())
            return KeywordClassifier(payload["labels"], payload["vocab"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{path} holds a broken keyword model: {exc!r}") from exc
