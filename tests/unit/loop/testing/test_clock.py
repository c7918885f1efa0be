"""The manual clock moves only when told; the manual stop's waits move it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from loop.testing.clock import EPOCH, ManualClock, ManualStop


def test_the_monotonic_and_the_wall_clock_move_together_only_when_told() -> None:
    clock = ManualClock(start=50.0)
    assert (clock(), clock.wall()) == (50.0, EPOCH)
    clock.advance(2.5)
    clock.sleep(10)
    assert clock() == 62.5 and clock.wall() == EPOCH + timedelta(seconds=12.5)
    assert clock.slept == [10]
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_a_manual_stop_records_its_waits_moves_the_clock_and_can_stop_at_a_wait() -> None:
    stop = ManualStop(after=2)
    assert stop.wait(1.5) is False and not stop
    assert stop.wait(3.0) is True and stop
    assert stop.waits == [1.5, 3.0] and stop.clock() == 1004.5
