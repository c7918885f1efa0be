"""The chaos harness's checks and kill schedule, in-process: each invariant fails when what
it guards is broken (the integration test in tests/integration/argilla/test_chaos.py runs
them on the real loop)."""

from __future__ import annotations

import random
import signal
from collections import Counter
from pathlib import Path
from typing import Any

from bench import chaos, chaos_checks
from loop.classification.base import ClassifierConfig
from loop.registry import ModelRegistry
from loop.testing.classifier import KeywordFactory


def test_every_streamed_document_must_be_tagged_or_dead_lettered() -> None:
    ok = chaos_checks.tagged_findings(["a", "b", "c"], {"a": [b"1"], "b": [b"2", b"2"]}, {"c"})
    assert ok.failures == [] and not ok.lost
    assert ok.figures["tagged_copies"] == 1

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
    """Records kills and restarts instead of running processes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        self.calls.append(("kill", name))
        return -sig

    def restart(self, name: str) -> Any:
        self.calls.append(("restart", name))


def test_the_kill_schedule_kills_each_process_the_asked_times_and_restarts_it() -> None:
    loop = FakeLoop()
    run = chaos.Run(loop, random.Random(3), horizon_s=0.0)  # type: ignore[arg-type]
    schedule = chaos.KillSchedule(kills=2)
    schedule.plan(run)
    assert len(schedule.due) == 8 and not schedule.done()
    schedule.tick(run)
    assert schedule.done()
    assert schedule.figures() == {"kills": {name: 2 for name in chaos.PROCESSES}}
    assert loop.calls[:2] == [("kill", loop.calls[0][1]), ("restart", loop.calls[0][1])]


def test_the_kill_moments_follow_the_seed() -> None:
    def moments(seed: int) -> list[tuple[float, str]]:
        schedule = chaos.KillSchedule(kills=3)
        schedule.plan(chaos.Run(FakeLoop(), random.Random(seed), horizon_s=100))  # type: ignore[arg-type]
        return schedule.due

    assert moments(1) == moments(1) != moments(2)
    assert all(0 <= at <= 100 for at, _ in moments(1))
