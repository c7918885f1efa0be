"""A clock that moves only when told, for code that waits, times out or schedules: pass
``clock`` where the code takes ``time.monotonic``, ``clock.wall`` where it takes the time of
day, ``clock.sleep`` for ``time.sleep``, and a :class:`ManualStop` where it waits on a stop
flag (a worker's ``StopFlag``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class ManualClock:
    """Monotonic seconds (``clock()``) and a wall clock (``clock.wall()``) that move together,
    only by :meth:`advance` or :meth:`sleep`; every sleep is recorded in ``slept``."""

    def __init__(self, start: float = 1000.0, wall_at_start: datetime = EPOCH) -> None:
        self.now = start
        self._start = start
        self._wall_at_start = wall_at_start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def wall(self) -> datetime:
        return self._wall_at_start + timedelta(seconds=self.now - self._start)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a monotonic clock does not go back")
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(max(seconds, 0.0))


class ManualStop:
    """A stop flag (what ``connectors.retry`` waits on) whose waits take no real time: each
    one moves ``clock`` on and is recorded in ``waits``. It is set by :meth:`set`, or by
    itself at the ``after``-th wait (a stop signal that comes while the code waits)."""

    def __init__(self, clock: ManualClock | None = None, after: int | None = None) -> None:
        self.clock = clock or ManualClock()
        self.after = after
        self.waits: list[float] = []
        self.stopped = False

    def __bool__(self) -> bool:
        return self.stopped

    def set(self) -> None:
        self.stopped = True

    def wait(self, seconds: float) -> bool:
        """Wait ``seconds`` (at once); whether the flag is set."""
        self.waits.append(seconds)
        self.clock.advance(max(seconds, 0.0))
        if self.after is not None and len(self.waits) >= self.after:
            self.stopped = True
        return self.stopped
