"""Resuming the end-to-end learning curve: finished runs are read back, the rest are run.

The loop itself is replaced here (``one_run`` and the scoring of its versions); the real loop
is run by tests/integration/argilla/test_learning_curve_e2e.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import learning_curve_e2e, live
from bench.learning_curve_e2e import Point


def write_pool(tmp_path: Path) -> tuple[Path, Path]:
    rows = [{"id": f"d{i}", "text": f"text {i}", "label": "ab"[i % 2]} for i in range(80)]
    train, test = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows[:60]))
    test.write_text("".join(json.dumps(r) + "\n" for r in rows[60:]))
    return train, test


@pytest.fixture
def loop_runs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """The (strategy, seed) of every run the benchmark started, each scoring 0.5 + seed/10."""
    started: list[tuple[str, int]] = []

    def one_run(*_: Any, strategy: str, seed: int, **__: Any) -> tuple[list[Point], Path]:
        started.append((strategy, seed))
        return [Point(10, 10, "v0001", True, "v0001", 1.0)], Path(f"/{strategy}/{seed}/registry")

    def score(points: list[Point], folder: Path, *_: Any) -> dict[str, Any]:
        seed = int(folder.parent.name)
        f1 = 0.5 + seed / 10
        return {
            "home": str(folder.parent),
            "points": [{**p.__dict__, "macro_f1": f1, "served_macro_f1": f1} for p in points],
        }

    monkeypatch.setattr(learning_curve_e2e, "one_run", one_run)
    monkeypatch.setattr(learning_curve_e2e, "_score_run", score)
    return started


def run(tmp_path: Path, seeds: int, resume: bool, **options: Any) -> dict[str, Any]:
    train, test = write_pool(tmp_path)
    settings: dict[str, Any] = {"budget": 10, "step": 10, "gate_size": 10, **options}
    return learning_curve_e2e.run(
        train,
        test,
        seeds=seeds,
        model_kind="keywords",
        simulation=False,
        out=tmp_path / "curve",
        stack=live.Stack(tmp_path / "stack", "127.0.0.1:1", None),
        resume=resume,
        **settings,
    )


def test_a_resumed_benchmark_runs_only_the_seeds_not_saved_yet(
    tmp_path: Path, loop_runs: list[tuple[str, int]]
) -> None:
    run(tmp_path, seeds=1, resume=False)
    assert loop_runs == [("breaking-ties", 0), ("random", 0)]
    summary = run(tmp_path, seeds=3, resume=True)
    assert loop_runs[2:] == [
        ("breaking-ties", 1),
        ("random", 1),
        ("breaking-ties", 2),
        ("random", 2),
    ]
    # The saved seed counts in the mean like the new ones: (0.5 + 0.6 + 0.7) / 3.
    assert summary["breaking-ties"]["macro_f1_mean"] == [0.6]
    assert len(summary["random"]["runs"]) == 3
    assert sorted(p.name for p in (tmp_path / "curve-runs").iterdir()) == [
        f"{name}-seed{seed}.json" for name in ("breaking-ties", "random") for seed in range(3)
    ]


def test_runs_saved_with_other_settings_or_without_resume_are_run_again(
    tmp_path: Path, loop_runs: list[tuple[str, int]]
) -> None:
    run(tmp_path, seeds=1, resume=False)
    run(tmp_path, seeds=1, resume=True, window=500)
    run(tmp_path, seeds=1, resume=False, window=500)
    assert loop_runs == [("breaking-ties", 0), ("random", 0)] * 3
