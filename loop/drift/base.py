"""The drift contract: a method compares a reference window of documents with a current one
and returns a :class:`DriftResult`, its score, its threshold and whether the score crossed it.

Every threshold here comes from the data, not from a constant: the statistic's distribution
under "no drift" is drawn by permuting documents between the two windows (the reference and
the current window are exchangeable when nothing drifted), and the threshold is its
``1 - alpha`` quantile, never below the method's smallest effect worth telling a person about.
The permutations need only column sums, so one matrix product draws them all
(:func:`permuted_sums`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from loop.errors import AlloopError

Floats = npt.NDArray[np.float64]


class DriftError(AlloopError):
    """Drift cannot be measured on what was given (windows of different shapes, too few
    documents, a reference missing what the method needs)."""


@dataclass(frozen=True)
class Window:
    """Documents as the scorer saw them: what a drift method may read. Every field is
    optional; a method that needs a missing one does not run on this pair of windows."""

    size: int
    embeddings: npt.NDArray[np.float32] | None = None
    """Sentence embeddings, one row per document (the body of the served version, or the
    packaged encoder before any version serves)."""
    probabilities: npt.NDArray[np.float32] | None = None
    """The served classifier's probabilities, one row per document, columns ``labels``."""
    labels: tuple[str, ...] = ()
    multi_label: bool = False
    mentions: Sequence[Sequence[str]] | None = None
    """The surface forms of the entities tagged in each document."""
    gold: Sequence[str | None] | None = None
    """A person's (or the file's) label of each document, None where there is none."""

    def __post_init__(self) -> None:
        for name in ("embeddings", "probabilities", "mentions", "gold"):
            value = getattr(self, name)
            if value is not None and len(value) != self.size:
                raise DriftError(f"the window has {self.size} documents but {len(value)} {name}")
        if self.probabilities is not None and self.probabilities.shape[1] != len(self.labels):
            raise DriftError("the probabilities' columns do not match the window's labels")


class DriftResult(BaseModel):
    """One method's figure on one window."""

    model_config = ConfigDict(frozen=True)

    method: str
    score: float
    threshold: float
    direction: Literal["above", "below"]
    """``above``: drift when the score rises above the threshold; ``below``: when it falls."""
    crossed: bool
    reference: float | None = None
    """The same statistic on the reference, where it has one."""
    detail: dict[str, float] = {}


@dataclass(frozen=True)
class NullConfig:
    """How thresholds are drawn: the false-alarm rate per method and the permutations."""

    alpha: float = 0.0025
    permutations: int = 2000
    seed: int = 0


class DriftMethod(Protocol):
    """A drift measure: ``check`` returns None when the windows lack what it reads."""

    @property
    def name(self) -> str:
        """What reports call it (``embedding-auc``, ``label-mix``, ...)."""
        ...

    def check(self, reference: Window, current: Window, null: NullConfig) -> DriftResult | None:
        """Compare ``current`` with ``reference``."""
        ...


@dataclass(frozen=True)
class Permuted:
    """Column sums of the current window and of the reference: the observed ones, and
    ``rounds`` draws of them with the documents shuffled between the two windows."""

    current: Floats
    reference: Floats
    null_current: Floats = field(repr=False)
    null_reference: Floats = field(repr=False)


def permuted_sums(reference: Floats, current: Floats, null: NullConfig) -> Permuted:
    """Sums of the per-document ``values`` (rows: documents, columns: what a statistic adds
    up) over each window, observed and under permutation."""
    pooled = np.concatenate([reference, current]).astype(np.float64)
    total = pooled.sum(axis=0)
    n, k = len(pooled), len(current)
    rng = np.random.default_rng(null.seed)
    order = np.argsort(rng.random((null.permutations, n)), axis=1)[:, :k]
    mask = np.zeros((null.permutations, n))
    np.put_along_axis(mask, order, 1.0, axis=1)
    drawn = mask @ pooled
    observed = current.astype(np.float64).sum(axis=0)
    return Permuted(observed, total - observed, drawn, total - drawn)


def result(
    method: str,
    score: float,
    null_scores: Floats,
    null: NullConfig,
    direction: Literal["above", "below"],
    min_effect: float,
    base: float,
    reference: float | None = None,
    detail: dict[str, float] | None = None,
) -> DriftResult:
    """The result of ``score`` against the ``1 - alpha`` quantile of its permutation
    distribution (the ``alpha`` one for ``below``), moved out to at least ``min_effect`` from
    ``base``, the value no drift would give."""
    finite = null_scores[np.isfinite(null_scores)]
    if direction == "above":
        quantile = float(np.quantile(finite, 1 - null.alpha)) if len(finite) else base
        threshold = max(quantile, base + min_effect)
        crossed = score > threshold
    else:
        quantile = float(np.quantile(finite, null.alpha)) if len(finite) else base
        threshold = min(quantile, base - min_effect)
        crossed = score < threshold
    return DriftResult(
        method=method,
        score=round(float(score), 4),
        threshold=round(threshold, 4),
        direction=direction,
        crossed=bool(crossed),
        reference=None if reference is None else round(float(reference), 4),
        detail={k: round(float(v), 4) for k, v in (detail or {}).items()},
    )


def one_hot(indices: npt.NDArray[np.int64], width: int) -> Floats:
    out = np.zeros((len(indices), width))
    out[np.arange(len(indices)), indices] = 1.0
    return out
