"""Drift in what the served classifier says: the predicted-label mix and its confidence.

Neither needs a label. The mix is the Jensen-Shannon distance (base 2: 0 for the same mix, 1
for disjoint ones) between the reference's and the current window's shares of each predicted
label, with a chi-squared test of homogeneity beside it (``scipy.stats.chi2_contingency``);
the confidence drop is the reference's mean confidence minus the current one's. Both take
their thresholds from permutations (:mod:`loop.drift.base`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency

from loop.drift.base import DriftResult, NullConfig, Window, one_hot, permuted_sums, result


def confidences(window: Window) -> np.ndarray:
    """How sure the model is of each document: the top probability (single-label), or the
    mean of max(p, 1 - p) over the labels (multi-label: each label is a yes/no question)."""
    assert window.probabilities is not None
    probs = window.probabilities.astype(np.float64)
    if window.multi_label:
        return np.asarray(np.maximum(probs, 1 - probs).mean(axis=1))
    return np.asarray(probs.max(axis=1))


def comparable(reference: Window, current: Window) -> bool:
    return (
        reference.probabilities is not None
        and current.probabilities is not None
        and reference.labels == current.labels
        and reference.size > 0
        and current.size > 0
    )


@dataclass(frozen=True)
class LabelMix:
    """The Jensen-Shannon distance between the predicted-label mixes."""

    name: str = "label-mix"
    min_effect: float = 0.05

    def check(self, reference: Window, current: Window, null: NullConfig) -> DriftResult | None:
        if not comparable(reference, current):
            return None
        assert reference.probabilities is not None and current.probabilities is not None
        width = len(reference.labels)
        sums = permuted_sums(
            one_hot(reference.probabilities.argmax(axis=1), width),
            one_hot(current.probabilities.argmax(axis=1), width),
            null,
        )
        observed = float(jensenshannon(sums.reference, sums.current, base=2))
        drawn = jensenshannon(sums.null_reference, sums.null_current, base=2, axis=1)
        table = np.vstack([sums.reference, sums.current])
        table = table[:, table.sum(axis=0) > 0]
        p_value = float(chi2_contingency(table)[1]) if table.shape[1] > 1 else 1.0
        return result(
            self.name,
            observed,
            np.asarray(drawn),
            null,
            "above",
            self.min_effect,
            base=0.0,
            detail={"chi2_p_value": p_value},
        )


@dataclass(frozen=True)
class ConfidenceDrop:
    """How much less sure of itself the model is on the current window."""

    name: str = "confidence-drop"
    min_effect: float = 0.02

    def check(self, reference: Window, current: Window, null: NullConfig) -> DriftResult | None:
        if not comparable(reference, current):
            return None

        def rows(window: Window) -> np.ndarray:
            return np.c_[confidences(window), np.ones(window.size)]

        sums = permuted_sums(rows(reference), rows(current), null)
        ref_mean = sums.reference[0] / sums.reference[1]
        cur_mean = sums.current[0] / sums.current[1]
        drawn = (
            sums.null_reference[:, 0] / sums.null_reference[:, 1]
            - sums.null_current[:, 0] / sums.null_current[:, 1]
        )
        return result(
            self.name,
            float(ref_mean - cur_mean),
            drawn,
            null,
            "above",
            self.min_effect,
            base=0.0,
            reference=float(ref_mean),
            detail={"current_confidence": float(cur_mean)},
        )
