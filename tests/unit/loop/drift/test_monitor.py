"""The monitor cuts the tagged stream into windows, keeps a reference per served version and
stores a numbered report per window after it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from loop.drift.monitor import DriftMonitor, config_of, window_of
from loop.drift.report import DriftConfig
from loop.drift.store import DriftStore
from loop.messages import EntityMention, TaggedDocument
from loop.settings import DriftSettings


def tagged(i: int, version: str | None = "v0001", label: str = "up") -> TaggedDocument:
    other = "down" if label == "up" else "up"
    return TaggedDocument(
        id=f"d{i}",
        text=f"text {i}",
        status="scored",
        label=label,
        score=0.9,
        probabilities={label: 0.9, other: 0.1} if label == "up" else {"up": 0.1, "down": 0.9},
        model_version=version,
        entities=[EntityMention(label="CRYPTO", start=0, end=4, text="text")],
    )


def batch(start: int, n: int, shift: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, 8)).astype(np.float32)
    vectors[:, 0] += shift
    return vectors


def monitor(store: DriftStore | None = None) -> DriftMonitor:
    return DriftMonitor(
        DriftConfig(permutations=300),
        window_size=50,
        reference_windows=2,
        methods=lambda cache: DriftConfig().methods(["text"], cache),
        entities=True,
        record=store.add if store else (lambda r: r),
    )


def test_a_window_of_tagged_documents_holds_what_the_scorer_computed() -> None:
    docs = [tagged(0), tagged(1, label="down")]
    built = window_of([(d, np.ones(4, dtype=np.float32)) for d in docs], entities=True)
    assert built.size == 2 and built.labels == ("up", "down")
    assert built.probabilities is not None and built.probabilities[1].tolist() == [
        np.float32(0.1),
        np.float32(0.9),
    ]
    assert built.embeddings is not None and built.embeddings.shape == (2, 4)
    assert built.mentions == [["text"], ["text"]]
    assert window_of([(docs[0], None)], entities=False).embeddings is None


def test_reports_start_after_the_reference_and_a_shift_is_flagged(tmp_path: Path) -> None:
    store = DriftStore(tmp_path / "drift.db")
    watch = monitor(store)
    docs = [tagged(i) for i in range(400)]
    reports = []
    for start in range(0, 400, 40):  # batches that do not line up with the windows
        shift = 3.0 if start >= 300 else 0.0
        reports += watch.add(docs[start : start + 40], batch(start, 40, shift, start))
    # 8 windows of 50: 2 for the reference, then 6 reports; the last two see the shift
    assert [r.window for r in reports] == [1, 2, 3, 4, 5, 6]
    assert [r.drift for r in reports][-2:] == [True, True]
    assert not any(r.drift for r in reports[:3])
    assert all(r.model_version == "v0001" and r.reference_documents == 100 for r in reports)
    history = DriftStore(store.path).history()
    assert [r.window for r in history] == [1, 2, 3, 4, 5, 6]
    assert store.latest() == history[-1] and store.history(last=2) == history[-2:]


def test_a_new_served_version_starts_a_new_reference() -> None:
    watch = monitor()
    vectors = batch(0, 150, 0.0, 1)
    assert watch.add([tagged(i) for i in range(100)], vectors[:100]) == [], "the reference"
    assert len(watch.add([tagged(i) for i in range(100, 150)], vectors[100:])) == 1
    assert watch.null_cache, "the domain classifier's no-drift AUC is kept for the reference"
    assert watch.add([tagged(i, "v0002") for i in range(100)], vectors[:100]) == []
    assert not watch.null_cache
    assert watch.version == "v0002" and len(watch.reference) == 2


def test_settings_become_the_config() -> None:
    config = config_of(DriftSettings(alpha=0.05, min_auc=0.6))
    assert config.alpha == 0.05 and config.min_auc == 0.6


def test_every_threshold_setting_reaches_the_config_and_the_seed_stays() -> None:
    thresholds = {
        "alpha": 0.05,
        "permutations": 500,
        "min_auc": 0.6,
        "min_label_mix": 0.1,
        "min_confidence_drop": 0.03,
        "min_f1_drop": 0.04,
        "min_unseen_rise": 0.06,
    }
    config = config_of(DriftSettings(**thresholds))
    assert {name: getattr(config, name) for name in thresholds} == thresholds
    assert config.seed == DriftConfig().seed
