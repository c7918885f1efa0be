"""Labeling that follows the drift: while the monitor says the stream drifted, a share of each
selection round goes to the documents farthest from the reference (reason ``drift``), so that
the next versions learn the new documents first rather than only the old ones they doubt."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from loop.selection.base import Pick, Scored

STRATEGY = "drift-novelty"


def unit(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    rows = vectors.astype(np.float64)
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def novelty(
    vectors: npt.NDArray[np.float32], reference: npt.NDArray[np.float32]
) -> npt.NDArray[np.float64]:
    """How far each document is from the reference: 1 minus the cosine similarity to its
    nearest reference document (0: a reference document again; up to 2)."""
    return np.asarray(1.0 - (unit(vectors) @ unit(reference).T).max(axis=1))


def with_drift(
    window: Sequence[Scored],
    picks: list[Pick],
    reference: npt.NDArray[np.float32],
    share: float,
) -> list[Pick]:
    """``picks`` with ``share`` of them (the last uncertainty picks: the least doubtful)
    given up for the window's documents farthest from ``reference`` that were not picked."""
    if not picks or share <= 0 or any(d.embedding is None for d in window):
        return picks
    n = min(round(len(picks) * share), sum(p.reason == "uncertain" for p in picks))
    if n == 0:
        return picks
    chosen = {p.id for p in picks}
    vectors = np.stack([d.embedding for d in window if d.embedding is not None])
    far = novelty(vectors, reference)
    order = [int(i) for i in np.argsort(-far, kind="stable") if window[i].id not in chosen]
    added = [Pick(window[i].id, round(float(far[i]), 6), "drift", STRATEGY) for i in order[:n]]
    dropped = 0
    kept: list[Pick] = []
    for pick in reversed(picks):
        if pick.reason == "uncertain" and dropped < len(added):
            dropped += 1
            continue
        kept.append(pick)
    return added + kept[::-1]
