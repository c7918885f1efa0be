"""The monitor's reference is kept per served version: a scorer that restarts goes on with the
reference it had learned, not with the first (maybe drifted) windows after the restart."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from loop.drift.base import Window
from loop.drift.monitor import monitor_of
from loop.drift.references import load_reference, prune, reference_file, save_reference
from loop.messages import TaggedDocument
from loop.settings import DriftSettings, Settings


def window(n: int, seed: int, shift: float = 0.0) -> Window:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, 6)).astype(np.float32)
    vectors[:, 0] += shift
    probs = rng.dirichlet([1.0, 1.0], size=n).astype(np.float32)
    return Window(n, vectors, probs, ("up", "down"), mentions=[["BTC"]] * n)


def test_reference_windows_come_back_as_they_were_saved(tmp_path: Path) -> None:
    saved = [window(30, 1), window(30, 2)]
    path = save_reference(tmp_path, "v0001", saved, window_size=30)
    assert path == reference_file(tmp_path, "v0001") and path.exists()
    loaded = load_reference(tmp_path, "v0001", window_size=30)
    assert len(loaded) == 2
    for before, after in zip(saved, loaded, strict=True):
        assert after.size == before.size and after.labels == before.labels
        assert after.embeddings is not None and before.embeddings is not None
        assert after.embeddings.dtype == np.float32
        assert np.array_equal(after.embeddings, before.embeddings)
        assert after.probabilities is not None and before.probabilities is not None
        assert np.array_equal(after.probabilities, before.probabilities)
        assert after.mentions == [["BTC"]] * 30
    assert load_reference(tmp_path, "v0002", window_size=30) == [], "another version's"


def test_a_reference_without_a_model_keeps_only_its_embeddings(tmp_path: Path) -> None:
    cold = Window(20, np.ones((20, 4), dtype=np.float32))
    save_reference(tmp_path, None, [cold], window_size=20)
    [loaded] = load_reference(tmp_path, None, window_size=20)
    assert loaded.probabilities is None and loaded.mentions is None and loaded.labels == ()
    assert loaded.embeddings is not None and loaded.embeddings.shape == (20, 4)


def test_a_reference_cut_otherwise_or_damaged_is_learned_again(tmp_path: Path) -> None:
    save_reference(tmp_path, "v0001", [window(30, 1)], window_size=30)
    assert load_reference(tmp_path, "v0001", window_size=50) == []
    reference_file(tmp_path, "v0001").write_bytes(b"not an archive")
    assert load_reference(tmp_path, "v0001", window_size=30) == []


def test_only_the_newest_reference_files_are_kept(tmp_path: Path) -> None:
    for i in range(5):
        path = save_reference(tmp_path, f"v{i}", [window(20, i)], window_size=20)
        os.utime(path, (1_000 + i, 1_000 + i))
    prune(tmp_path, 2)
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == ["v3.npz", "v4.npz"]
    assert not list(tmp_path.glob(".reference-*")), "no temporary file left behind"


def tagged(i: int) -> TaggedDocument:
    return TaggedDocument(
        id=f"d{i}",
        text=f"text {i}",
        status="scored",
        label="up",
        score=0.8,
        probabilities={"up": 0.8, "down": 0.2},
        model_version="v0001",
    )


def test_a_restarted_monitor_goes_on_with_the_reference_it_had(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path / "home",
        drift=DriftSettings(window_size=40, reference_windows=2, permutations=200),
    )
    rng = np.random.default_rng(0)
    steady = rng.normal(size=(120, 8)).astype(np.float32)
    first = monitor_of(settings)
    reports = first.add([tagged(i) for i in range(120)], steady)
    assert len(reports) == 1 and not reports[0].drift, "2 reference windows, then one report"
    learned = first.reference

    shifted = rng.normal(size=(40, 8)).astype(np.float32)
    shifted[:, 0] += 3.0  # the stream drifted while the scorer was down
    restarted = monitor_of(settings)
    after = restarted.add([tagged(i) for i in range(120, 160)], shifted)
    assert [w.size for w in restarted.reference] == [40, 40]
    for before, now in zip(learned, restarted.reference, strict=True):
        assert before.embeddings is not None and now.embeddings is not None
        assert np.array_equal(before.embeddings, now.embeddings)
    assert len(after) == 1 and after[0].drift, "the first window after the restart is compared"
    assert "embedding-auc" in after[0].crossed
