"""The chaos harness's checks and kill schedule, in-process: each invariant fails when what
it guards is broken (the integration test in tests/integration/argilla/test_chaos.py runs
them on the real loop)."""

from __future__ import annotations

import random
import signal
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bench import chaos_checks, chaos_scenarios
from bench.chaos_scenarios import PROCESSES, KillSchedule, Run
from connectors.kafka import HELD
from loop.classification.base import ClassifierConfig
from loop.registry import ModelRegistry
from loop.testing.classifier import KeywordFactory


def test_every_streamed_document_must_be_tagged_or_dead_lettered() -> None:
    ok = chaos_checks.tagged_findings(["a", "b", "c"], {"a": [b"1"], "b": [b"2", b"2"]}, {"c"})
    assert ok.failures == [] and not ok.lost
    assert ok.figures["tagged_copies"] == 1 and ok.figures["replayed"] == 1

    lost = chaos_checks.tagged_findings(["a", "b", "c"], {"a": [b"1"], "b": [b"2"]}, set())
    assert lost.lost and lost.figures["lost_documents"] == 1
    assert "1 document(s) not on the tagged topic: c" in lost.failures


def test_copies_of_a_tagged_document_must_be_byte_identical() -> None:
    found = chaos_checks.tagged_findings(["a"], {"a": [b'{"p": 0.5}', b'{"p": 0.4}']}, set())
    assert found.figures["unequal_copies"] == 1 and not found.lost
    assert "tagged twice with different bytes" in found.failures[0]


def test_one_argilla_record_per_candidate() -> None:
    assert chaos_checks.record_findings({"a", "b"}, Counter({"a": 1, "b": 1})).failures == []

    found = chaos_checks.record_findings({"a", "b", "c"}, Counter({"a": 2, "b": 1, "x": 1}))
    assert found.lost
    assert found.figures["duplicate_records"] == 1 and found.figures["lost_candidates"] == 1
    assert len(found.failures) == 3  # c has none, a has two, x is nobody's


def test_every_answer_stored_once() -> None:
    assert chaos_checks.label_findings({"r1"}, {"r1"}, Counter({"r1": 1})).failures == []

    found = chaos_checks.label_findings({"r1", "r2"}, {"r1"}, Counter({"r1": 2}))
    assert found.lost and found.figures["duplicate_labels"] == 1
    assert len(found.failures) == 2


def test_every_version_must_load(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    model = KeywordFactory().train(["up", "down"], ["Bullish", "Bearish"], ClassifierConfig())
    card = registry.publish(model.save, labels=model.labels, kind="keywords")
    registry.promote(card.version)
    assert chaos_checks.version_findings(tmp_path).failures == []

    (registry.model_path(card.version) / "keywords.json").write_text("{")
    found = chaos_checks.version_findings(tmp_path)
    assert found.figures["unloadable_versions"] == 1
    assert "v0001 (ModelError" in found.failures[0]


class FakeLoop:
    """Records kills and restarts instead of running processes (``held`` for restarts with
    extra settings); each start's process is a new object, its log in ``folder``."""

    def __init__(self, folder: Path | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.folder = folder or Path("/nonexistent")
        self.running: dict[str, tuple[list[str], object]] = {}

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        self.calls.append(("kill", name))
        return -sig

    def restart(self, name: str, env: dict[str, str] | None = None) -> Any:
        self.calls.append(("held" if env else "restart", name))
        process = object()
        self.running[name] = ([], process)
        return process

    def log(self, name: str) -> Path:
        return self.folder / f"{name}.log"


def test_the_kill_schedule_kills_each_process_the_asked_times_and_restarts_it() -> None:
    loop = FakeLoop()
    run = Run(loop, random.Random(3), horizon_s=0.0)  # type: ignore[arg-type]
    schedule = KillSchedule(kills=2)
    schedule.plan(run)
    assert len(schedule.due) == 8 and not schedule.done()
    schedule.tick(run)
    assert schedule.done()
    assert schedule.figures() == {"kills": {name: 2 for name in PROCESSES}}
    assert loop.calls[:2] == [("kill", loop.calls[0][1]), ("restart", loop.calls[0][1])]


def test_the_kill_moments_follow_the_seed() -> None:
    def moments(seed: int) -> list[tuple[float, str]]:
        schedule = KillSchedule(kills=3)
        schedule.plan(Run(FakeLoop(), random.Random(seed), horizon_s=100))  # type: ignore[arg-type]
        return schedule.due

    assert moments(1) == moments(1) != moments(2)
    assert all(0 <= at <= 100 for at, _ in moments(1))


def test_a_replay_kill_holds_the_scorer_s_commit_and_kills_it_once_a_batch_is_held(
    tmp_path: Path,
) -> None:
    loop = FakeLoop(tmp_path)
    log = loop.log("scorer")
    log.write_text(f"old scorer: t.raw/0/1 (+9): {HELD} 300.0 s\n")  # an earlier life's
    run = Run(loop, random.Random(0), horizon_s=0.0)  # type: ignore[arg-type]
    replay = chaos_scenarios.ReplayKill(replays=1)
    replay.plan(run)
    replay.tick(run)
    assert loop.calls == [("kill", "scorer"), ("held", "scorer")] and not replay.done()
    replay.tick(run)
    assert len(loop.calls) == 2, "nothing held yet by this scorer: it runs on"

    with log.open("a") as out:
        out.write(f"2026 WARNING connectors.kafka: c-1.raw/2/40 (+63): {HELD} 300.0 s (a debug)\n")
    replay.tick(run)
    assert loop.calls[2:] == [("kill", "scorer"), ("restart", "scorer")]
    assert replay.done()
    assert replay.held == ["c-1.raw/2/40 (+63)"]
    assert replay.figures() == {"replay_kills": 1, "replay_misses": 0}


def test_a_replay_kill_gives_up_when_no_batch_is_held_in_time(tmp_path: Path) -> None:
    loop = FakeLoop(tmp_path)
    run = Run(loop, random.Random(0), horizon_s=0.0)  # type: ignore[arg-type]
    replay = chaos_scenarios.ReplayKill(replays=1, wait_s=0.0)
    replay.plan(run)
    replay.tick(run)
    replay.tick(run)
    assert loop.calls[-2:] == [("kill", "scorer"), ("restart", "scorer")]
    assert replay.done() and replay.figures() == {"replay_kills": 0, "replay_misses": 1}


def test_a_held_scorer_killed_by_another_scenario_is_held_again(tmp_path: Path) -> None:
    loop = FakeLoop(tmp_path)
    run = Run(loop, random.Random(0), horizon_s=0.0)  # type: ignore[arg-type]
    replay = chaos_scenarios.ReplayKill(replays=1)
    replay.plan(run)
    replay.tick(run)
    loop.restart("scorer")  # the kill schedule's restart
    replay.tick(run)
    replay.tick(run)
    assert loop.calls[-2:] == [("kill", "scorer"), ("held", "scorer")]


def test_an_argilla_stop_freezes_then_thaws_and_kills_then_restarts_redis(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    done: list[str] = []
    monkeypatch.setattr(chaos_scenarios.os, "kill", lambda pid, sig: done.append(f"{sig}:{pid}"))
    monkeypatch.setattr(
        chaos_scenarios.argilla_local,
        "kill_redis",
        lambda argilla: done.append("kill redis") or "the dead redis",
    )
    monkeypatch.setattr(
        chaos_scenarios.argilla_local,
        "restart_redis",
        lambda argilla, dead: done.append(f"restart {dead}"),
    )

    class Argilla:
        def service(self, name: str) -> Any:
            return SimpleNamespace(pid=7, alive=lambda: True)

    loop = SimpleNamespace(stack=SimpleNamespace(argilla=Argilla()))
    run = Run(loop, random.Random(0), horizon_s=0.0)  # type: ignore[arg-type]
    stops = chaos_scenarios.ArgillaStops(stops=1, stop_s=0.0, redis_down_s=0.0)
    stops.plan(run)
    for _ in range(3):
        assert not stops.done()
        stops.tick(run)
    assert done == [
        f"{signal.SIGSTOP}:7",
        f"{signal.SIGCONT}:7",
        "kill redis",
        "restart the dead redis",
    ]
    assert stops.done()
    assert stops.figures() == {"argilla_stops": 1, "argilla_stop_s": 0.0, "redis_kills": 1}


def test_broker_restarts_need_the_broker_on_disk(tmp_path: Path) -> None:
    loop = SimpleNamespace(stack=SimpleNamespace(state_dir=None))
    run = Run(loop, random.Random(0), horizon_s=10.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="on disk"):
        chaos_scenarios.BrokerRestarts(restarts=1).plan(run)
    loop.stack.state_dir = tmp_path  # a stack folder without a broker
    with pytest.raises(ValueError, match="on disk"):
        chaos_scenarios.BrokerRestarts(restarts=1).plan(run)
