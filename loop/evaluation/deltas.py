"""What changed between two versions, on the test documents both were scored on.

Per label: the F1 of each version and the difference, with a paired bootstrap confidence
interval (the same resampled documents for both versions, so the interval reflects the change,
not the noise of each score). Per document: which ones flipped from right to wrong (broken)
and from wrong to right (fixed).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel

from loop.classification.evaluation import Prediction
from loop.evaluation.base import MetricDelta
from loop.evaluation.bootstrap import metric_delta, weights


class Flip(BaseModel):
    """A document one version got right and the other wrong (labels, or label sets)."""

    id: str
    gold: str | list[str]
    base: str | list[str]
    head: str | list[str]
    text: str | None = None
    """The document's text, when the API found it in the label store."""


class Delta(BaseModel):
    """The comparison of ``head`` against ``base``."""

    base: str
    head: str
    common_test_size: int
    confidence: float
    macro_f1: MetricDelta
    accuracy: MetricDelta
    per_label: list[MetricDelta]
    fixed: list[Flip]
    broken: list[Flip]


def _indicators(answers: Sequence[str | list[str]], index: dict[str, int]) -> np.ndarray:
    """A (documents x labels) 0/1 matrix: one 1 per row for single labels, any for sets."""
    matrix = np.zeros((len(answers), len(index)), dtype=np.int64)
    for row, answer in enumerate(answers):
        for name in [answer] if isinstance(answer, str) else answer:
            matrix[row, index[name]] = 1
    return matrix


def _f1_per_label(
    weights: np.ndarray, gold: np.ndarray, said: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """F1 and support per label for each row of ``weights`` (samples x documents: how often
    each document is drawn) over the indicator matrices ``gold`` and ``said``."""
    tp = weights @ (gold & said)
    actual = weights @ gold
    denom = actual + weights @ said
    return np.divide(2 * tp, denom, out=np.zeros(tp.shape), where=denom > 0), actual


def _macro(f1: np.ndarray, support: np.ndarray) -> np.ndarray:
    present = support > 0
    counts = present.sum(axis=1)
    return np.divide((f1 * present).sum(axis=1), counts, out=np.zeros(len(f1)), where=counts > 0)


def compare(
    base: Sequence[Prediction],
    head: Sequence[Prediction],
    labels: Sequence[str],
    *,
    base_version: str,
    head_version: str,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Delta:
    """Compare two versions on the documents both were scored on (matched by id). Works on
    single labels and on label sets (multi-label versions) alike."""
    base_by_id = {p.id: p for p in base}
    common = sorted(p.id for p in head if p.id in base_by_id)
    head_by_id = {p.id: p for p in head}
    names = list(labels)
    for doc in common:
        for answer in (head_by_id[doc].gold, base_by_id[doc].predicted, head_by_id[doc].predicted):
            names += [
                n for n in ([answer] if isinstance(answer, str) else answer) if n not in names
            ]
    index = {name: i for i, name in enumerate(names)}
    gold = _indicators([head_by_id[d].gold for d in common], index)
    said_base = _indicators([base_by_id[d].predicted for d in common], index)
    said_head = _indicators([head_by_id[d].predicted for d in common], index)
    right_base = (gold == said_base).all(axis=1).astype(np.int64)
    right_head = (gold == said_head).all(axis=1).astype(np.int64)
    n = len(common)
    k = len(names)

    rows = weights(n, resamples, seed)

    def stats(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        f1_base, support = _f1_per_label(w, gold, said_base)
        f1_head, _ = _f1_per_label(w, gold, said_head)
        accuracy = np.stack([w @ right_base, w @ right_head], axis=1) / max(n, 1)
        return f1_base, f1_head, support, accuracy

    f1_b, f1_h, support, acc = stats(rows)

    def metric(name: str, label: str | None, b: np.ndarray, h: np.ndarray, sup: int) -> MetricDelta:
        return metric_delta(
            name, b, h, support=sup, confidence=confidence, documents=n, label=label
        )

    per_label = [
        metric("f1", names[i], f1_b[:, i], f1_h[:, i], int(support[0, i]))
        for i in range(k)
        if support[0, i] > 0 or f1_b[0, i] > 0 or f1_h[0, i] > 0
    ]
    # Each row's macro average runs over the labels with support in that row's documents.
    macro_b, macro_h = _macro(f1_b, support), _macro(f1_h, support)
    flips_fixed: list[Flip] = []
    flips_broken: list[Flip] = []
    for i, doc in enumerate(common):
        if right_base[i] != right_head[i]:
            flip = Flip(
                id=doc,
                gold=head_by_id[doc].gold,
                base=base_by_id[doc].predicted,
                head=head_by_id[doc].predicted,
            )
            (flips_fixed if right_head[i] else flips_broken).append(flip)
    return Delta(
        base=base_version,
        head=head_version,
        common_test_size=n,
        confidence=confidence,
        macro_f1=metric("macro_f1", None, macro_b, macro_h, n),
        accuracy=metric("accuracy", None, acc[:, 0], acc[:, 1], n),
        per_label=per_label,
        fixed=flips_fixed,
        broken=flips_broken,
    )
