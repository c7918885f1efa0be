"""Uncertainty strategies: small-text's breaking ties, prediction entropy and least confidence
on the probabilities the scorer already has, and random sampling, the baseline.

For a multi-label model every label is its own yes/no question, so a document is uncertain
when some label's probability is near 0.5: breaking ties and least confidence rank by the label
closest to 0.5 (1 - min |2p - 1|), entropy by the mean binary entropy of the labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from loop.selection.base import Strategy


class _Precomputed:
    """A small-text classifier stand-in whose 'dataset' is the probability matrix itself."""

    def predict_proba(self, dataset: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return dataset


def label_uncertainty(
    strategy: str, probabilities: npt.NDArray[np.float32]
) -> npt.NDArray[np.float64]:
    """Uncertainty of multi-label predictions (independent probabilities), higher is more
    uncertain, from 0 (every label certain) to 1 (some label, or all for entropy, at 0.5)."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, 1 - 1e-12)
    if len(p) == 0 or p.shape[1] == 0:
        return np.zeros(len(p))
    if strategy in ("breaking-ties", "least-confidence"):
        return np.asarray(1 - np.abs(2 * p - 1).min(axis=1))
    if strategy == "entropy":
        return np.asarray((-(p * np.log2(p) + (1 - p) * np.log2(1 - p))).mean(axis=1))
    raise ValueError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")


def _margin(probabilities: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """small-text's ``BreakingTies`` confidence: the best probability minus the second."""
    ranked = np.sort(probabilities, axis=1)
    return np.asarray(ranked[:, -1] - ranked[:, -2])


def _entropy(probabilities: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """small-text's ``PredictionEntropy`` confidence: each row's entropy (natural log)."""
    from scipy.stats import entropy

    return np.asarray(entropy(probabilities, axis=1))


_CONFIDENCE_AT_ONCE = {"BreakingTies": _margin, "PredictionEntropy": _entropy}
"""small-text's confidence of the strategies it computes row by row (``apply_along_axis``
with a Python function: about 1.3 ms of every scorer batch at the default window), over the
whole window at once. The same numbers; a test compares them with small-text's own."""


@dataclass(frozen=True)
class SmallTextStrategy:
    """One of small-text's query strategies, run on precomputed probabilities (the model is
    not called again); multi-label probabilities go through :func:`label_uncertainty`."""

    name: str
    query: str
    """The class name in ``small_text.query_strategies``."""

    def uncertainty(
        self, probabilities: npt.NDArray[np.float32], multi_label: bool = False
    ) -> npt.NDArray[np.float64]:
        if multi_label:
            return label_uncertainty(self.name, probabilities)
        if len(probabilities) == 0:
            return np.zeros(0)
        import small_text.query_strategies as queries

        chosen = getattr(queries, self.query)()
        at_once = _CONFIDENCE_AT_ONCE.get(self.query)
        if at_once is not None and probabilities.ndim == 2 and probabilities.shape[1] >= 2:
            confidence = at_once(probabilities)
            scores = confidence if chosen.lower_is_better else -confidence
        else:
            indices = np.arange(len(probabilities))
            # small-text's score: lower means query first (it negates where higher is better).
            empty = np.array([], dtype=int)
            scores = chosen.score(_Precomputed(), probabilities, indices, empty, None)
        return -np.asarray(scores, dtype=np.float64)


@dataclass(frozen=True)
class RandomSampling:
    """The baseline: every document as uncertain as any other; rounds pick uniformly."""

    name: str = "random"

    def uncertainty(
        self, probabilities: npt.NDArray[np.float32], multi_label: bool = False
    ) -> npt.NDArray[np.float64]:
        return np.zeros(len(probabilities))


STRATEGY_CLASSES: dict[str, Strategy] = {
    "breaking-ties": SmallTextStrategy("breaking-ties", "BreakingTies"),
    "entropy": SmallTextStrategy("entropy", "PredictionEntropy"),
    "least-confidence": SmallTextStrategy("least-confidence", "LeastConfidence"),
    "random": RandomSampling(),
}
STRATEGIES = tuple(STRATEGY_CLASSES)
"""The strategies a round can be configured with (``ALLOOP_SCORER__STRATEGY``)."""


def strategy_for(name: str) -> Strategy:
    """The strategy called ``name``; ``ValueError`` naming the known ones otherwise."""
    try:
        return STRATEGY_CLASSES[name]
    except KeyError:
        raise ValueError(
            f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}"
        ) from None


def uncertainty(
    strategy: str, probabilities: npt.NDArray[np.float32], multi_label: bool = False
) -> npt.NDArray[np.float64]:
    """Higher is more uncertain, by the strategy called ``strategy`` (small-text's query
    strategies for single-label probabilities; :func:`label_uncertainty` for multi-label ones)."""
    found = strategy_for(strategy)
    if isinstance(found, RandomSampling):
        raise ValueError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES[:-1])}")
    return found.uncertainty(probabilities, multi_label)
