"""Embedding drift: can a classifier tell the current window from the reference?

A logistic regression learns to tell reference embeddings (0) from current ones (1); its
cross-validated ROC AUC is the score: 0.5 when the windows look alike, 1.0 when every current
document is told apart. Each document is scored by a model that never saw it (out-of-fold).

The threshold is the AUC a domain classifier reaches when nothing drifted, drawn by training
it again on the same documents with their domain labels shuffled (a permutation test with
refits; Evidently's default text-drift method draws its threshold from a bootstrap of a random
classifier instead). The refits are needed: a cross-validated AUC under no drift spreads
about 1.3 to 1.5 times wider than shuffling the labels over fixed scores says (the folds'
models share training documents), and a threshold drawn that way raised false alarms on
about one window in twenty. Refits cost one cross-validation each, so a few (``refits``) are
drawn once per reference and window size, kept in ``null_cache``, and the threshold is their
mean plus the normal quantile of ``1 - alpha`` times their spread.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import norm

from loop.drift.base import DriftError, DriftResult, NullConfig, Window, result

NullCache = dict[tuple[int, int], tuple[float, float]]


@dataclass(frozen=True)
class DomainClassifier:
    """The domain classifier's cross-validated ROC AUC on sentence embeddings."""

    name: str = "embedding-auc"
    folds: int = 5
    c: float = 1.0
    """Inverse regularisation of the logistic regression."""
    min_effect: float = 0.05
    """An AUC below 0.5 + this is never called drift, however many documents."""
    refits: int = 20
    null_cache: NullCache = field(default_factory=dict, compare=False, repr=False)
    """Mean and spread of the no-drift AUC per (reference, current) size: share one dict
    between the checks of one reference."""

    def check(self, reference: Window, current: Window, null: NullConfig) -> DriftResult | None:
        if reference.embeddings is None or current.embeddings is None:
            return None
        if reference.embeddings.shape[1] != current.embeddings.shape[1]:
            raise DriftError(
                "the reference and current embeddings come from different encoders "
                f"({reference.embeddings.shape[1]} and {current.embeddings.shape[1]} dimensions)"
            )
        folds = min(self.folds, reference.size, current.size)
        if folds < 2:
            return None
        vectors = np.vstack([reference.embeddings, current.embeddings]).astype(np.float64)
        target = np.r_[np.zeros(reference.size), np.ones(current.size)]
        score = cross_validated_auc(vectors, target, folds, self.c, null.seed)
        key = (reference.size, current.size)
        if key not in self.null_cache:
            rng = np.random.default_rng(null.seed)
            drawn = [
                cross_validated_auc(vectors, rng.permutation(target), folds, self.c, i)
                for i in range(self.refits)
            ]
            self.null_cache[key] = (float(np.mean(drawn)), float(np.std(drawn, ddof=1)))
        mean, spread = self.null_cache[key]
        quantile = mean + float(norm.ppf(1 - null.alpha)) * spread
        return result(
            self.name,
            score,
            np.array([quantile]),
            null,
            "above",
            self.min_effect,
            base=0.5,
            detail={"folds": folds, "null_mean": mean, "null_spread": spread},
        )


def cross_validated_auc(
    vectors: np.ndarray, target: np.ndarray, folds: int, c: float, seed: int
) -> float:
    """ROC AUC of the out-of-fold scores of a logistic regression telling 1 from 0."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    scores = np.zeros(len(target))
    split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    # One BLAS thread: on small matrices more threads only fight (25 times slower on 2 cores
    # beside the scorer's model) and the scorer's own batches need the cores.
    with threadpool_limits(limits=1):
        for train, test in split.split(vectors, target):
            model = LogisticRegression(C=c, max_iter=1000).fit(vectors[train], target[train])
            scores[test] = model.decision_function(vectors[test])
    return float(roc_auc_score(target, scores))
