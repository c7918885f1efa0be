"""The selection contract: what a round chooses from, what it picks and why, and the shape of
an uncertainty strategy.

A :class:`Strategy` turns the probabilities the scorer already computed into an uncertainty
score per document (higher: ask a person first). The strategies are in
:mod:`loop.selection.uncertainty`, the diversity steps (near-duplicates, core-set,
representatives) in :mod:`loop.selection.diversity`; each task's round puts them together
(:mod:`loop.classification.selection`, :mod:`loop.entities.selection`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

Reason = Literal["uncertain", "rare", "random", "cold-start", "drift"]


@dataclass(frozen=True)
class Scored:
    """A document in the window: its id, text, the model's probabilities (empty before the
    first model) over ``labels``, and its embedding (or None)."""

    id: str
    text: str
    probabilities: Mapping[str, float] = field(default_factory=dict)
    embedding: npt.NDArray[np.float32] | None = None


@dataclass(frozen=True)
class Pick:
    id: str
    score: float
    reason: Reason
    strategy: str


@dataclass(frozen=True)
class SelectionConfig:
    """How a round selects (stored with the candidates it makes)."""

    strategy: str = "breaking-ties"
    """Uncertainty measure: breaking-ties (margin), entropy, least-confidence, or random."""
    batch_size: int = 20
    """Candidates per round."""
    random_fraction: float = 0.1
    """Share of each batch picked uniformly at random (reason ``random``)."""
    diversity: bool = True
    """Pick the batch as a core-set of the most uncertain, on the embeddings."""
    pool_factor: int = 4
    """The core-set chooses among the ``pool_factor * batch_size`` most uncertain."""
    duplicate_threshold: float = 0.95
    """Cosine similarity above which two documents count as one."""
    rare_examples: int = 8
    """A label with fewer labelled examples than this gets a share of the batch."""
    rare_share: float = 0.3
    """Most of the batch that rare labels may take."""
    cold_start_examples: int = 1
    """Until every label has this many labels, seed keywords and random picks fill the batch
    (before the first model, always)."""
    seed_keywords: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Label -> keywords or regular expressions whose matches are likely examples of it."""


class Strategy(Protocol):
    """An uncertainty measure over a window's probabilities."""

    @property
    def name(self) -> str:
        """What configuration and the candidates' ``strategy`` call it."""

    def uncertainty(
        self, probabilities: npt.NDArray[np.float32], multi_label: bool = False
    ) -> npt.NDArray[np.float64]:
        """One score per row of ``probabilities``: higher is more uncertain."""
