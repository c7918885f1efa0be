"""In-process fakes for tests: a tiny, deterministic classifier with the real contract.

The fake learns which words go with which label and scores texts by word overlap. It saves
to JSON and loads back, so registry, scorer and API code can be tested without torch. Trained
on label sets it is multi-label: a label's probability is that of the text's word most often
seen with it.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from loop.classification.base import Classifier, ClassifierConfig, Target, training_sets
from loop.errors import ModelError

_WORD = re.compile(r"\w+", re.UNICODE)
SEEN = "\x00seen"
"""The vocabulary's count of training texts a word appeared in (not a label name)."""


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class KeywordClassifier:
    """Scores labels by how many of a text's words were seen with each label."""

    def __init__(
        self, labels: list[str], vocab: dict[str, dict[str, int]], multi_label: bool = False
    ) -> None:
        self._labels = labels
        self._vocab = vocab
        self._multi_label = multi_label
        self.calls = 0

    @property
    def labels(self) -> list[str]:
        return list(self._labels)

    @property
    def multi_label(self) -> bool:
        return self._multi_label

    def predict_proba(self, texts: Sequence[str], batch_size: int = 64) -> npt.NDArray[np.float32]:
        self.calls += 1
        if self._multi_label:
            return self._label_probabilities(texts)
        scores = np.ones((len(texts), len(self._labels)), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _words(text):
                for col, label in enumerate(self._labels):
                    scores[row, col] += self._vocab.get(word, {}).get(label, 0)
        return scores / scores.sum(axis=1, keepdims=True)

    def _label_probabilities(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Per label, the strongest word: the share of its training texts that had the label
        (smoothed by one unseen text); 0 when no word of the text is known."""
        scores = np.zeros((len(texts), len(self._labels)), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _words(text):
                counts = self._vocab.get(word, {})
                seen = counts.get(SEEN, 0)
                for col, label in enumerate(self._labels):
                    share = counts.get(label, 0) / (1 + seen)
                    scores[row, col] = max(scores[row, col], share)
        return scores

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=False)
        payload = {"labels": self._labels, "vocab": self._vocab, "multi_label": self._multi_label}
        (path / "keywords.json").write_text(json.dumps(payload))


class KeywordFactory:
    """Factory for :class:`KeywordClassifier`; ``name`` is what model cards record."""

    name = "keywords"

    def train(
        self, texts: Sequence[str], labels: Sequence[Target], config: ClassifierConfig
    ) -> Classifier:
        sets, names = training_sets(labels, config.multi_label)
        vocab: dict[str, Counter[str]] = defaultdict(Counter)
        for text, labels_of in zip(texts, sets, strict=True):
            for word in set(_words(text)):
                vocab[word][SEEN] += 1
                for label in labels_of:
                    vocab[word][label] += 1
        return KeywordClassifier(
            names, {word: dict(c) for word, c in vocab.items()}, config.multi_label
        )

    def load(self, path: Path) -> KeywordClassifier:
        file = path / "keywords.json"
        if not file.is_file():
            raise ModelError(f"{path} holds no keyword model")
        try:
            payload = json.loads(file.read_text())
            return KeywordClassifier(
                payload["labels"], payload["vocab"], bool(payload.get("multi_label", False))
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{path} holds a broken keyword model: {exc!r}") from exc
