"""Diversity in a batch: one record for many near-identical documents, a core-set among the most
uncertain (small-text's greedy core-set), representatives of the whole window before any model.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt


def _unit(rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.asarray(rows / np.where(norms == 0, 1, norms), dtype=np.float32)


DUPLICATE_BLOCK = 256
"""Documents compared at once by :func:`without_duplicates` (memory: a block by the kept)."""


def without_duplicates(
    order: Sequence[int], embeddings: npt.NDArray[np.float32] | None, threshold: float
) -> list[int]:
    """Keep the first of every group of near-identical documents (in ``order``): the whole of
    :class:`Unique`, for a caller that reads all of it."""
    return list(Unique(order, embeddings, threshold))


class Unique:
    """``order`` without near-duplicates, worked out only as far as it is read.

    A document is dropped when its cosine with one kept before it reaches ``threshold``. The
    cosines are taken a block of documents at a time (one matrix product against the kept
    ones, one within the block), not one document at a time: on a window of 2,000 this is
    what made a selection round cost as much as tagging a few hundred documents. A round reads
    only the head of its ranking (the core-set's pool, a few rare-label members), so blocks
    past what is read are never compared: that was most of a round's time, and the scorer
    runs a round every few batches. What is kept does not depend on how far it is read.
    """

    def __init__(
        self,
        order: Sequence[int] | npt.NDArray[np.integer],
        embeddings: npt.NDArray[np.float32] | None,
        threshold: float,
    ) -> None:
        self._order = np.asarray(order, dtype=np.int64)
        self._embeddings = embeddings if threshold < 1 else None
        self._threshold = threshold
        self._kept: list[int] = []
        self._compared = 0  # documents of ``order`` already compared
        self._kept_rows: npt.NDArray[np.float32] | None = None

    def __iter__(self) -> Iterator[int]:
        read = 0
        while True:
            while read >= len(self._kept) and self._compared < len(self._order):
                self._compare_next_block()
            if read >= len(self._kept):
                return
            yield self._kept[read]
            read += 1

    def _compare_next_block(self) -> None:
        positions = self._order[self._compared : self._compared + DUPLICATE_BLOCK]
        self._compared += len(positions)
        if self._embeddings is None:
            self._kept.extend(int(i) for i in positions)
            return
        block = _unit(self._embeddings[positions])
        if self._kept_rows is None:
            self._kept_rows = np.empty((len(self._order), block.shape[1]), dtype=np.float32)
        kept_rows = self._kept_rows[: len(self._kept)]
        before = np.any(block @ kept_rows.T >= self._threshold, axis=1)
        within = np.asarray(block @ block.T >= self._threshold)
        taken: list[int] = []
        for j in range(len(block)):
            if before[j] or (taken and within[j, taken].any()):
                continue
            taken.append(j)
        self._kept_rows[len(self._kept) : len(self._kept) + len(taken)] = block[taken]
        self._kept.extend(int(positions[j]) for j in taken)


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
