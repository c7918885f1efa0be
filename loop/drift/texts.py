"""Windows of texts that were never through the scorer (``alloop drift check``, the bench):
embedded and scored the way the scorer does it, by the served classifier's body and head, or
by the packaged encoder alone when no classifier is given."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from loop.classification.base import Classifier
from loop.drift.base import Window

Encoder = Callable[[Sequence[str]], npt.NDArray[np.float32]]


def embed_and_score(
    texts: Sequence[str],
    classifier: Classifier | None,
    encoder: Encoder | None,
    batch_size: int = 64,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[npt.NDArray[np.float32] | None, npt.NDArray[np.float32] | None]:
    """The embeddings and probabilities of ``texts``, a batch at a time (``on_batch`` hears
    how many were done): one pass through the classifier when it gives both, as the scorer's."""
    vectors: list[npt.NDArray[np.float32]] = []
    probs: list[npt.NDArray[np.float32]] = []
    for start in range(0, len(texts), batch_size):
        batch = list(texts[start : start + batch_size])
        if classifier is not None and hasattr(classifier, "predict_with_embeddings"):
            p, v = classifier.predict_with_embeddings(batch, batch_size=batch_size)
            probs.append(p)
            vectors.append(v)
        else:
            if classifier is not None:
                probs.append(classifier.predict_proba(batch, batch_size=batch_size))
            if encoder is not None:
                vectors.append(encoder(batch))
        if on_batch is not None:
            on_batch(len(batch))
    embeddings = np.vstack(vectors).astype(np.float32) if vectors else None
    probabilities = np.vstack(probs).astype(np.float32) if probs else None
    return embeddings, probabilities


def window_of_texts(
    texts: Sequence[str],
    gold: Sequence[str | None] | None,
    classifier: Classifier | None,
    encoder: Encoder | None,
    batch_size: int = 64,
    on_batch: Callable[[int], None] | None = None,
) -> Window:
    """A :class:`Window` of ``texts`` (with their known labels, if any)."""
    embeddings, probabilities = embed_and_score(texts, classifier, encoder, batch_size, on_batch)
    labels = tuple(classifier.labels) if classifier is not None else ()
    has_gold = gold is not None and any(g is not None for g in gold)
    return Window(
        size=len(texts),
        embeddings=embeddings,
        probabilities=probabilities,
        labels=labels if probabilities is not None else (),
        multi_label=bool(classifier is not None and classifier.multi_label),
        gold=list(gold) if has_gold and gold is not None else None,
    )


def part(window: Window, rows: npt.NDArray[np.int64] | Sequence[int]) -> Window:
    """The documents ``rows`` of ``window``, as a window of their own."""
    index = np.asarray(rows, dtype=np.int64)

    def pick(values: Sequence[object] | None) -> list[object] | None:
        return None if values is None else [values[i] for i in index]

    return Window(
        size=len(index),
        embeddings=None if window.embeddings is None else window.embeddings[index],
        probabilities=None if window.probabilities is None else window.probabilities[index],
        labels=window.labels,
        multi_label=window.multi_label,
        mentions=pick(window.mentions),  # type: ignore[arg-type]
        gold=pick(window.gold),  # type: ignore[arg-type]
    )
