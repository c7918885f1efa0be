"""The small versions of `alloop bench chaos`: a few hundred tweets through the real loop
(broker, Argilla, the SetFit seed version in the scorer, real processes) while the scorer,
labeler, trainer and API are each SIGKILLed at random moments and restarted; and the same
with every scenario at once: the broker restarted, Argilla frozen and its Redis killed, and a
scorer killed between its acknowledged outputs and its commit (a replay)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import chaos, live
from stack import local
from stack.argilla import LocalArgilla

pytestmark = [pytest.mark.integration, pytest.mark.slow]


QUICK: dict[str, Any] = {"model_kind": "keywords", "round_size": 50, "per_round": 5}
"""A small loop for both runs: the trainer's keyword model, rounds of 50 documents and 5
candidates each."""


def test_sigkills_of_every_process_lose_and_duplicate_nothing(
    broker: str, argilla: LocalArgilla, tmp_path: Path
) -> None:
    figures = chaos.run(
        300,
        kills=2,
        seed=1,
        rate=3.0,
        settle_timeout_s=240,
        **QUICK,
        stack=live.Stack(tmp_path / "stack", broker, argilla),
    )

    print(chaos.report(figures))
    assert figures["failures"] == []
    assert figures["kills"] == {name: 2 for name in chaos.PROCESSES}
    assert figures["tagged"] == 300
    assert figures["candidates"] > 0 and figures["answers"] == figures["candidates"]
    assert figures["versions"] >= 2  # the seed version and at least one round's


def test_every_fault_at_once_loses_and_duplicates_nothing_and_replays_the_same_bytes(
    disk_stack: Path, argilla: LocalArgilla, tmp_path: Path
) -> None:
    broker = local.StackState.load(disk_stack).services["broker"].address
    assert broker
    figures = chaos.run(
        240,
        seed=2,
        rate=2.0,
        settle_timeout_s=300,
        **QUICK,
        scenarios=chaos.scenarios(
            1,
            broker_restarts=1,
            broker_down_s=8,
            argilla_stops=1,
            argilla_stop_s=20,
            replays=1,
        ),
        stack=live.Stack(tmp_path / "loop", broker, argilla, disk_stack),
    )

    print(chaos.report(figures))
    assert figures["failures"] == []
    assert figures["kills"] == {name: 1 for name in chaos.PROCESSES}
    assert figures["broker_restarts"] == 1
    assert figures["argilla_stops"] == 1 and figures["redis_kills"] == 1
    assert figures["replay_kills"] == 1, "a scorer was killed while its commit was held"
    assert figures["replayed"] >= 1 and figures["unequal_copies"] == 0
    assert figures["tagged"] == 240
    assert figures["candidates"] > 0 and figures["answers"] == figures["candidates"]
