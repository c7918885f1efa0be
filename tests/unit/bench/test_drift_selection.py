"""The drift-aware selection benchmark's parts, on small synthetic pools."""

from __future__ import annotations

import numpy as np
import pytest

from bench.drift_selection import Pool, curve, curve_area, run, shares, stream, summarise
from loop.drift.report import DriftConfig
from loop.selection.base import SelectionConfig


def test_the_new_source_rises_then_holds() -> None:
    assert shares(4, 0.5, 2) == [0.125, 0.25, 0.375, 0.5, 0.5, 0.5]


def test_windows_hold_their_share_of_the_new_source_and_no_row_twice() -> None:
    windows = stream(100, 30, [0.0, 0.1, 0.5], 20, np.random.default_rng(0))
    assert [len(w) for w in windows] == [20, 20, 20]
    assert [sum(r >= 100 for r in w) for w in windows] == [0, 2, 10]
    rows = [r for w in windows for r in w]
    assert len(set(rows)) == len(rows) and max(rows) < 130
    with pytest.raises(ValueError, match="needs 20 new"):
        stream(100, 10, [1.0], 20, np.random.default_rng(0))


def test_the_area_is_macro_f1_against_the_labels_share() -> None:
    points = [{"labels": 10, "f": 0.5}, {"labels": 20, "f": 0.5}]
    assert curve_area(points, "f") == pytest.approx(0.125 + 0.25)


def pool(seed: int = 0) -> Pool:
    """Old source: 3 classes on dimensions 0-2. New source: 3 classes on dimensions 4-6, all
    moved far towards class a0 and away from a1, where the old head is sure of a0 (plain
    uncertainty never asks about them)."""
    rng = np.random.default_rng(seed)

    def cloud(centres: list[int], shift: float, n: int) -> tuple[np.ndarray, list[int]]:
        which = rng.integers(len(centres), size=n)
        vectors = rng.normal(scale=0.4, size=(n, 8))
        for i, c in enumerate(which):
            vectors[i, centres[c]] += 2.0
        vectors[:, 0] += shift
        vectors[:, 1] -= shift  # another direction: far in cosine from every old document
        return vectors.astype(np.float32), [int(c) for c in which]

    old, old_gold = cloud([0, 1, 2], 0.0, 400)
    new, new_gold = cloud([4, 5, 6], 6.0, 200)
    old_test, old_test_gold = cloud([0, 1, 2], 0.0, 60)
    new_test, new_test_gold = cloud([4, 5, 6], 6.0, 60)
    return Pool(
        vectors=np.vstack([old, new]),
        gold=[f"a{g}" for g in old_gold] + [f"b{g}" for g in new_gold],
        old=400,
        old_test=old_test,
        old_test_gold=[f"a{g}" for g in old_test_gold],
        new_test=new_test,
        new_test_gold=[f"b{g}" for g in new_test_gold],
    )


def test_the_drift_share_labels_the_new_source_that_uncertainty_passes_over() -> None:
    data = pool()
    rng = np.random.default_rng(1)
    seed_rows = [int(i) for i in rng.permutation(400)[:30]]
    rest = [i for i in range(400) if i not in seed_rows]
    windows = [
        rest[i * 40 : i * 40 + 30] + list(range(400 + i * 10, 410 + i * 10)) for i in range(4)
    ]
    reference = rest[200:280]
    config = SelectionConfig(batch_size=6, random_fraction=0.0)
    args = (data, seed_rows, reference, windows, [True] * 4, config)
    aware = curve(*args, share=0.5, seed=0)
    plain = curve(*args, share=0.0, seed=0)
    assert [p["labels"] for p in aware] == [6, 12, 18, 24] == [p["labels"] for p in plain]
    assert all(p["drift_picks"] == 3 for p in aware) and all(p["drift_picks"] == 0 for p in plain)
    assert sum(p["new_picked"] for p in aware) >= 12
    assert sum(p["new_picked"] for p in plain) < sum(p["new_picked"] for p in aware)
    assert aware[-1]["new_f1"] > plain[-1]["new_f1"]
    unflagged = curve(data, seed_rows, reference, windows, [False] * 4, config, 0.5, 0)
    assert unflagged == plain, "no drift flagged: no drift share"


def test_a_run_flags_the_switch_and_compares_both_arms() -> None:
    result = run(
        pool(),
        seeds=2,
        window=40,
        reference_windows=2,
        ramp=2,
        top=0.5,
        hold=1,
        budget=4,
        seed_labels=20,
        share=0.5,
        config=DriftConfig(permutations=200),
    )
    assert result["seeds"] == 2 and len(result["new_area_gain"]) == 2
    for r in result["runs"]:
        assert r["drifted"][-1], "half the window from a far cluster is drift"
        assert len(r["arms"]["plain"]["points"]) == 3
    assert set(result["new_area"]) == {"drift-aware", "plain"}
    assert result["faster"] == all(g > 0 for g in result["new_area_gain"])


def test_faster_means_every_seed_gained() -> None:
    def arm(area: float) -> dict[str, float]:
        return {"new_area": area, "old_area": 0.5, "new_picked": 1}

    runs = [
        {"arms": {"drift-aware": arm(0.6), "plain": arm(0.5)}},
        {"arms": {"drift-aware": arm(0.4), "plain": arm(0.5)}},
    ]
    summary = summarise(runs)
    assert summary["new_area_gain"] == [0.1, -0.1] and summary["faster"] is False
    assert summary["new_area"] == {"drift-aware": 0.5, "plain": 0.5}
    assert summarise(runs[:1])["faster"] is True
