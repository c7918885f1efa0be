"""The in-process fake classifier keeps the real contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loop.classification.base import Classifier, ClassifierConfig
from loop.errors import ModelError
from loop.testing.classifier import KeywordClassifier, KeywordFactory

TEXTS = ["stocks soar", "shares rally higher", "market crash", "prices plunge", "calm day"]
LABELS = ["up", "up", "down", "down", "flat"]


def trained() -> KeywordClassifier:
    clf = KeywordFactory().train(TEXTS, LABELS, ClassifierConfig())
    assert isinstance(clf, KeywordClassifier)
    return clf


def test_it_is_a_classifier_with_sorted_labels() -> None:
    clf = trained()
    assert isinstance(clf, Classifier)
    assert clf.labels == ["down", "flat", "up"]


def test_probabilities_are_rows_that_sum_to_one() -> None:
    clf = trained()
    texts = ["stocks soar", "market crash today", "unknown words only", "", "SOAR soar soar"]
    probs = clf.predict_proba(texts)
    assert probs.shape == (len(texts), 3)
    assert probs.dtype == np.float32
    assert np.all(probs > 0) and np.all(probs < 1)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    labels = clf.labels
    assert labels[int(np.argmax(probs[0]))] == "up"
    assert labels[int(np.argmax(probs[1]))] == "down"
    np.testing.assert_allclose(probs[2], [1 / 3] * 3, rtol=1e-6)  # nothing known: uniform


def test_no_texts_gives_an_empty_array() -> None:
    assert trained().predict_proba([]).shape == (0, 3)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    clf = trained()
    clf.save(tmp_path / "model")
    loaded = KeywordFactory().load(tmp_path / "model")
    assert loaded.labels == clf.labels
    texts = ["stocks crash", "shares rally", "calm", "nothing"]
    np.testing.assert_array_equal(loaded.predict_proba(texts), clf.predict_proba(texts))


def test_save_refuses_an_existing_folder(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    with pytest.raises(FileExistsError):
        trained().save(tmp_path / "model")


def test_load_of_an_empty_folder_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no keyword model"):
        KeywordFactory().load(tmp_path)


def test_training_needs_two_labels() -> None:
    with pytest.raises(ModelError, match="at least two labels"):
        KeywordFactory().train(["a", "b"], ["x", "x"], ClassifierConfig())
