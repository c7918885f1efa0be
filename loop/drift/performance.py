"""Macro-F1 without labels, and with them where people labelled some of the window.

The estimate follows the idea of NannyML's CBPE: a calibrated probability is the chance that
the prediction is right, so each document adds its expected share to the confusion matrix
(the predicted class gets ``p`` of a true positive and ``1 - p`` of a false positive; every
other class ``p_j`` of a false negative), and macro-F1 is read from those expected counts.
It holds while the model's confidences stay calibrated on the new data; that is exactly
what a concept drift breaks, so the measured macro-F1 on the evaluation sample's labels is
reported beside it as they arrive. The probabilities are calibrated on the reference when
it has labels (isotonic regression of "the prediction was right" on the top probability);
otherwise they are taken as the model gives them (SetFit's logistic head is close)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from loop.drift.base import DriftResult, NullConfig, Window, one_hot, permuted_sums, result
from loop.drift.predictions import comparable

MIN_GOLD = 20
"""Labelled documents a window needs before its measured macro-F1 is compared."""


def macro_f1(sums: np.ndarray, classes: int) -> np.ndarray:
    """Macro-F1 from summed (TP, FP, FN) per class (the last axis holds the three blocks);
    classes with no document on either side are left out of the mean."""
    tp = sums[..., :classes]
    fp = sums[..., classes : 2 * classes]
    fn = sums[..., 2 * classes :]
    denominator = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(denominator > 0, 2 * tp / np.where(denominator > 0, denominator, 1), np.nan)
    return np.asarray(np.nanmean(f1, axis=-1))


def expected_counts(probs: np.ndarray) -> np.ndarray:
    """Each document's expected (TP, FP, FN) per class, from calibrated probabilities."""
    predicted = one_hot(probs.argmax(axis=1), probs.shape[1])
    return np.hstack([predicted * probs, predicted * (1 - probs), (1 - predicted) * probs])


def observed_counts(predicted: np.ndarray, gold: np.ndarray, classes: int) -> np.ndarray:
    """Each document's (TP, FP, FN) per class, from its predicted and its gold class."""
    hit = one_hot(predicted, classes) * one_hot(gold, classes)
    return np.hstack([hit, one_hot(predicted, classes) - hit, one_hot(gold, classes) - hit])


def calibrator(reference: Window) -> IsotonicCalibration | None:
    """Isotonic calibration of the top probability on the reference's labelled documents."""
    if reference.gold is None or reference.probabilities is None:
        return None
    index = {label: i for i, label in enumerate(reference.labels)}
    rows = [i for i, g in enumerate(reference.gold) if g is not None]
    if len(rows) < MIN_GOLD:
        return None
    from sklearn.isotonic import IsotonicRegression

    probs = reference.probabilities[rows].astype(np.float64)
    right = [index.get(str(reference.gold[i]), -1) for i in rows] == probs.argmax(axis=1)
    model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    model.fit(probs.max(axis=1), right.astype(np.float64))
    return IsotonicCalibration(model)


@dataclass(frozen=True)
class IsotonicCalibration:
    model: object

    def __call__(self, probs: np.ndarray) -> np.ndarray:
        """The top probability replaced by its calibrated value, the rest scaled to sum to 1."""
        probs = probs.astype(np.float64)
        top = probs.max(axis=1)
        fitted = np.asarray(self.model.predict(top))  # type: ignore[attr-defined]
        rest = np.where(top < 1, (1 - fitted) / np.maximum(1 - top, 1e-12), 0.0)
        out = probs * rest[:, None]
        out[np.arange(len(probs)), probs.argmax(axis=1)] = fitted
        return out


@dataclass(frozen=True)
class EstimatedF1:
    """Macro-F1 estimated from calibrated confidences (single-label models)."""

    name: str = "estimated-macro-f1"
    min_effect: float = 0.03

    def check(self, reference: Window, current: Window, null: NullConfig) -> DriftResult | None:
        if not comparable(reference, current) or current.multi_label:
            return None
        assert reference.probabilities is not None and current.probabilities is not None
        calibrate = calibrator(reference)

        def counts(window: Window) -> np.ndarray:
            assert window.probabilities is not None
            probs = window.probabilities.astype(np.float64)
            return expected_counts(calibrate(probs) if calibrate else probs)

        k = len(reference.labels)
        sums = permuted_sums(counts(reference), counts(current), null)
        detail = {"calibrated": float(calibrate is not None)}
        measured = measured_f1(current)
        if measured is not None:
            detail["measured_macro_f1"], detail["measured_documents"] = measured
        return result(
            self.name,
            float(macro_f1(sums.current, k)),
            macro_f1(sums.null_current, k),
            null,
            "below",
            self.min_effect,
            base=float(macro_f1(sums.reference, k)),
            reference=float(macro_f1(sums.reference, k)),
            detail=detail,
        )


def gold_rows(window: Window) -> tuple[np.ndarray, np.ndarray, int] | None:
    """The labelled documents' predicted and gold classes (labels the model does not know
    are classes of their own, never predicted), or None when too few are labelled."""
    if window.gold is None or window.probabilities is None:
        return None
    rows = [i for i, g in enumerate(window.gold) if g is not None]
    if len(rows) < MIN_GOLD:
        return None
    names = list(window.labels)
    names += sorted({str(window.gold[i]) for i in rows} - set(names))
    index = {label: i for i, label in enumerate(names)}
    predicted = window.probabilities[rows].argmax(axis=1)
    gold = np.array([index[str(window.gold[i])] for i in rows])
    return predicted, gold, len(names)


def measured_f1(window: Window) -> tuple[float, float] | None:
    """Macro-F1 on the window's labelled documents, and how many there are."""
    found = gold_rows(window)
    if found is None:
        return None
    predicted, gold, classes = found
    sums = observed_counts(predicted, gold, classes).sum(axis=0)
    return float(macro_f1(sums, classes)), float(len(gold))


@dataclass(frozen=True)
class MeasuredF1:
    """Macro-F1 on the labelled documents of both windows (the evaluation sample)."""

    name: str = "measured-macro-f1"
    min_effect: float = 0.05

    def check(self, reference: Window, current: Window, null: NullConfig) -> DriftResult | None:
        if not comparable(reference, current) or current.multi_label:
            return None
        ref, cur = gold_rows(reference), gold_rows(current)
        if ref is None or cur is None:
            return None
        classes = max(ref[2], cur[2])
        sums = permuted_sums(
            observed_counts(ref[0], ref[1], classes),
            observed_counts(cur[0], cur[1], classes),
            null,
        )
        before = float(macro_f1(sums.reference, classes))
        return result(
            self.name,
            float(macro_f1(sums.current, classes)),
            macro_f1(sums.null_current, classes),
            null,
            "below",
            self.min_effect,
            base=before,
            reference=before,
            detail={"documents": float(len(cur[1]))},
        )
