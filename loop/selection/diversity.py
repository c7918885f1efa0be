"""Diversity in a batch: one record for many near-identical documents, a core-set among the most
uncertain (small-text's greedy core-set), representatives of the whole window before any model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt


def _unit(rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.asarray(rows / np.where(norms == 0, 1, norms), dtype=np.float32)


def without_duplicates(
    order: Sequence[int], embeddings: npt.NDArray[np.float32] | None, threshold: float
) -> list[int]:
    """Keep the first of every group of near-identical documents (in ``order``)."""
    if embeddings is None or threshold >= 1:
        return list(order)
    unit = _unit(embeddings)
    kept: list[int] = []
    for i in order:
        if kept and float(np.max(unit[kept] @ unit[i])) >= threshold:
            continue
        kept.append(i)
    return kept


def coreset(
    candidates: Sequence[int], embeddings: npt.NDArray[np.float32] | None, n: int
) -> list[int]:
    """``n`` diverse documents among ``candidates`` (small-text's greedy core-set)."""
    if n >= len(candidates) or embeddings is None:
        return list(candidates)[:n]
    from small_text.query_strategies.coresets import greedy_coreset

    # Slightly shorter than unit length, so that rounding never pushes a cosine above 1 (its
    # arccos would be NaN, and a NaN distance would win the core-set's argmax).
    pool = _unit(embeddings[list(candidates)]) * np.float32(1 - 1e-4)
    # Seed the core-set with the most uncertain one, as if it were already labelled.
    chosen = greedy_coreset(pool, np.arange(len(pool)), np.array([0]), n - 1, normalized=True)
    return [candidates[0], *(candidates[int(i)] for i in chosen)]


def representatives(
    candidates: Sequence[int],
    embeddings: npt.NDArray[np.float32] | None,
    n: int,
    rng: np.random.Generator,
) -> list[int]:
    """``n`` documents that stand for the whole of ``candidates``: the one nearest each
    centre of a k-means clustering of their embeddings. Unlike a core-set, which reaches for
    the outliers, this samples where the documents are, which is what a first model needs."""
    if n >= len(candidates) or embeddings is None or n <= 0:
        return list(candidates)[: max(n, 0)]
    from sklearn.cluster import KMeans

    pool = _unit(embeddings[list(candidates)])
    model = KMeans(n_clusters=n, n_init=1, random_state=int(rng.integers(1 << 31))).fit(pool)
    distance = model.transform(pool)  # documents x centres
    chosen: list[int] = []
    for cluster in range(n):
        members = np.flatnonzero(model.labels_ == cluster)
        if len(members):
            chosen.append(int(members[distance[members, cluster].argmin()]))
    # Identical documents make fewer clusters than asked for: the rest, in the given order.
    picked = list(dict.fromkeys(chosen))
    taken = set(picked)
    picked += [i for i in range(len(candidates)) if i not in taken][: n - len(picked)]
    return [candidates[i] for i in picked]
