"""The learning-curve benchmark end to end on a small slice of real tweets (real MiniLM)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import learning_curve
from loop.readers import Columns
from tests.conftest import DATASETS

pytestmark = pytest.mark.slow

TWEETS = DATASETS / "twitter_financial_news_sentiment"


def test_a_small_run_writes_both_curves_a_picture_and_the_summary(tmp_path: Path) -> None:
    lines = (TWEETS / "sent_train.csv").read_text().splitlines()
    train = tmp_path / "train.csv"
    test = tmp_path / "test.csv"
    train.write_text("\n".join([lines[0], *lines[1:301]]) + "\n")
    test.write_text("\n".join([lines[0], *lines[301:401]]) + "\n")
    columns = Columns(label_names={"0": "Bearish", "1": "Bullish", "2": "Neutral"})
    summary = learning_curve.run(
        train, test, columns=columns, seeds=2, budget=60, step=20, out=tmp_path / "curve"
    )
    for name in ("breaking-ties", "random"):
        assert summary[name]["labels"] == [20, 40, 60]
        assert len(summary[name]["macro_f1_std"]) == 3
        assert 0 <= summary[name]["area"] <= 1
    assert 0 < summary["full_data_macro_f1"] <= 1
    assert json.loads((tmp_path / "curve.json").read_text())["budget"] == 60
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"
    assert "area" in learning_curve.report(summary, "breaking-ties", "random")


def test_area_and_labels_to_reach() -> None:
    points = [(50, 0.5), (100, 0.9)]
    assert learning_curve.area(points, 100) == pytest.approx(
        0.5 * 0.5 * 0.5 + 0.5 * (0.5 + 0.9) / 2
    )
    assert learning_curve.labels_to_reach(points, 0.8) == 100
    assert learning_curve.labels_to_reach(points, 0.95) is None


def test_a_multi_label_run_pools_several_files_and_scores_label_sets(tmp_path: Path) -> None:
    nlupp = DATASETS / "nlupp_banking"
    summary = learning_curve.run(
        [nlupp / "fold0.json", nlupp / "fold1.json"],
        nlupp / "fold2.json",
        columns=Columns(labels="intents"),
        multi_label=True,
        seeds=1,
        budget=60,
        step=30,
        out=tmp_path / "curve",
    )
    assert summary["multi_label"] and summary["pool"] > 150 and summary["labels"] > 20
    for name in ("breaking-ties", "random"):
        assert summary[name]["labels"] == [30, 60]
        assert all(0 <= f <= 1 for f in summary[name]["macro_f1_mean"])
    # label-by-label macro-F1 of a one-vs-rest head trained on every pool label
    assert 0.2 < summary["full_data_macro_f1"] <= 1
