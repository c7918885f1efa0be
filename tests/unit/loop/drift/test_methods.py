"""The drift methods on synthetic windows: quiet when nothing changed, loud when it did."""

from __future__ import annotations

import numpy as np
import pytest

from loop.drift.base import DriftError, NullConfig, Window, permuted_sums
from loop.drift.embedding import DomainClassifier
from loop.drift.entities import UnseenForms
from loop.drift.performance import EstimatedF1, MeasuredF1, measured_f1
from loop.drift.predictions import ConfidenceDrop, LabelMix
from loop.drift.report import DriftConfig, check

LABELS = ("down", "flat", "up")
NULL = NullConfig(alpha=0.01, permutations=1000)


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def window(
    rng: np.random.Generator,
    n: int,
    *,
    shift: float = 0.0,
    prior: tuple[float, float, float] = (0.2, 0.6, 0.2),
    sharpness: float = 3.0,
    gold: bool = False,
    wrong: float = 0.0,
    forms: tuple[str, ...] = ("BTC", "ETH"),
) -> Window:
    """Documents whose class is drawn from ``prior``; probabilities peaked on it by
    ``sharpness``; gold labels drawn from the probabilities (calibrated), a ``wrong`` share
    of them moved to another class."""
    classes = rng.choice(3, size=n, p=prior)
    embeddings = rng.normal(size=(n, 16)).astype(np.float32)
    embeddings[:, 0] += shift
    embeddings[np.arange(n), 1 + classes] += 1.0
    logits = rng.normal(size=(n, 3))
    logits[np.arange(n), classes] += sharpness
    probs = softmax(logits)
    labels = None
    if gold:
        drawn = np.array([rng.choice(3, p=p / p.sum()) for p in probs.astype(np.float64)])
        flip = rng.random(n) < wrong
        drawn[flip] = (drawn[flip] + 1) % 3
        labels = [LABELS[i] for i in drawn]
    mentions = [[str(rng.choice(forms))] for _ in range(n)]
    return Window(n, embeddings, probs, LABELS, mentions=mentions, gold=labels)


def test_permuted_sums_keep_the_totals_and_observe_the_windows() -> None:
    rng = np.random.default_rng(1)
    ref, cur = rng.random((30, 2)), rng.random((10, 2))
    sums = permuted_sums(ref, cur, NULL)
    assert np.allclose(sums.current, cur.sum(axis=0))
    assert np.allclose(sums.reference, ref.sum(axis=0))
    assert np.allclose(sums.null_current + sums.null_reference, (ref.sum(0) + cur.sum(0)))
    assert sums.null_current.shape == (NULL.permutations, 2)


def test_a_window_refuses_fields_of_another_length() -> None:
    with pytest.raises(DriftError, match="3 documents but 2 embeddings"):
        Window(3, embeddings=np.zeros((2, 4), dtype=np.float32))
    with pytest.raises(DriftError, match="columns"):
        Window(2, probabilities=np.zeros((2, 3), dtype=np.float32), labels=("a", "b"))


def test_no_drift_raises_at_most_one_alarm_in_twenty_windows() -> None:
    rng = np.random.default_rng(7)
    reference = window(rng, 400, gold=True)
    methods = DriftConfig().methods(["btc", "eth"])
    alarms = [
        check(methods, reference, window(rng, 200, gold=True), DriftConfig(permutations=1000))
        for _ in range(20)
    ]
    assert sum(r.drift for r in alarms) <= 1, [r.crossed for r in alarms if r.drift]
    ran = {r.method for r in alarms[0].results}
    assert ran == {
        "embedding-auc",
        "label-mix",
        "confidence-drop",
        "estimated-macro-f1",
        "measured-macro-f1",
        "unseen-entities",
    }


def test_shifted_embeddings_cross_the_domain_classifier() -> None:
    rng = np.random.default_rng(2)
    found = DomainClassifier().check(window(rng, 300), window(rng, 150, shift=1.0), NULL)
    assert found is not None and found.crossed and found.score > 0.7
    assert found.direction == "above" and found.threshold >= 0.55


def test_the_no_drift_auc_is_drawn_by_refits_once_per_window_size() -> None:
    rng = np.random.default_rng(11)
    method = DomainClassifier(refits=8)
    first = method.check(window(rng, 200), window(rng, 100), NULL)
    again = method.check(window(rng, 200), window(rng, 100), NULL)
    assert first is not None and again is not None
    assert list(method.null_cache) == [(200, 100)]
    assert first.threshold == again.threshold and first.detail["null_spread"] > 0.02
    assert abs(first.detail["null_mean"] - 0.5) < 0.05


def test_the_domain_classifier_needs_embeddings_of_one_encoder() -> None:
    rng = np.random.default_rng(2)
    other = Window(5, embeddings=np.zeros((5, 8), dtype=np.float32))
    assert DomainClassifier().check(window(rng, 20), Window(5), NULL) is None
    with pytest.raises(DriftError, match="different encoders"):
        DomainClassifier().check(window(rng, 20), other, NULL)


def test_a_new_label_mix_crosses_and_the_chi_squared_test_agrees() -> None:
    rng = np.random.default_rng(3)
    found = LabelMix().check(window(rng, 400), window(rng, 200, prior=(0.6, 0.2, 0.2)), NULL)
    assert found is not None and found.crossed
    assert found.detail["chi2_p_value"] < 0.001


def test_a_model_less_sure_of_itself_crosses_the_confidence_drop() -> None:
    rng = np.random.default_rng(4)
    found = ConfidenceDrop().check(window(rng, 400), window(rng, 200, sharpness=1.0), NULL)
    assert found is not None and found.crossed
    assert found.reference is not None and found.score > 0.1
    assert found.detail["current_confidence"] < found.reference


def test_the_estimate_of_macro_f1_follows_the_measured_one_when_calibrated() -> None:
    rng = np.random.default_rng(5)
    current = window(rng, 2000, gold=True)
    found = EstimatedF1().check(window(rng, 400, gold=True), current, NULL)
    measured = measured_f1(current)
    assert found is not None and measured is not None
    assert found.detail["calibrated"] == 1.0
    assert abs(found.score - measured[0]) < 0.05
    assert found.detail["measured_macro_f1"] == pytest.approx(measured[0], abs=1e-4)


def test_less_confident_predictions_lower_the_estimate_below_its_threshold() -> None:
    rng = np.random.default_rng(6)
    found = EstimatedF1().check(window(rng, 400), window(rng, 200, sharpness=0.5), NULL)
    assert found is not None and found.crossed and found.direction == "below"
    assert found.reference is not None and found.score < found.reference - 0.03


def test_wrong_predictions_on_labelled_documents_cross_the_measured_f1() -> None:
    rng = np.random.default_rng(8)
    reference = window(rng, 400, gold=True)
    fine = MeasuredF1().check(reference, window(rng, 200, gold=True), NULL)
    broken = MeasuredF1().check(reference, window(rng, 200, gold=True, wrong=0.5), NULL)
    assert fine is not None and not fine.crossed
    assert broken is not None and broken.crossed
    assert MeasuredF1().check(reference, window(rng, 200), NULL) is None  # no labels


def test_new_surface_forms_cross_the_unseen_share() -> None:
    rng = np.random.default_rng(9)
    method = UnseenForms.of(["btc", "ETH"])
    same = method.check(window(rng, 300), window(rng, 150), NULL)
    new = method.check(window(rng, 300), window(rng, 150, forms=("BTC", "$PEPE")), NULL)
    assert same is not None and same.score == 0.0 and not same.crossed
    assert new is not None and new.crossed and new.score > 0.3


def test_a_report_says_drift_and_sums_up_each_method() -> None:
    rng = np.random.default_rng(10)
    report = check(
        DriftConfig().methods(),
        window(rng, 300),
        window(rng, 150, shift=1.5, prior=(0.6, 0.2, 0.2)),
        DriftConfig(permutations=500),
        window=3,
        model_version="v0002",
    )
    assert report.drift and "embedding-auc" in report.crossed
    summary = report.summary()
    assert summary["drift"] is True and summary["documents"] == 150
    assert set(summary["embedding-auc"]) == {"score", "threshold", "direction", "crossed"}


def test_each_method_is_tested_at_a_share_of_alpha() -> None:
    assert DriftConfig(alpha=0.01).null(4).alpha == pytest.approx(0.0025)
