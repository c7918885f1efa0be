"""The faults ``alloop bench chaos`` injects, each a :class:`Scenario` acting on a running loop
at moments drawn over the stream: SIGKILLs of the loop's processes, restarts of the broker,
Argilla frozen with its Redis killed, and a scorer killed between its acknowledged outputs and
its commit (a replay)."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench import live
from connectors.kafka import HELD
from stack import argilla as argilla_local
from stack import local
from stack.local import Service

PROCESSES: dict[str, list[str]] = {
    "scorer": ["worker", "scorer"],
    "labeler": ["worker", "labeler", "--no-vectors"],
    "trainer": ["worker", "trainer"],
    "api": ["api"],
}
"""The loop's processes, by name, and their ``alloop`` arguments."""


@dataclass
class Run:
    """What scenarios act on: the running loop, the run's seeded random numbers, and how long
    the stream lasts (``horizon_s``, the time scenarios draw their moments in)."""

    loop: live.Loop
    rng: random.Random
    horizon_s: float
    started: float = field(default_factory=time.monotonic)
    events: list[str] = field(default_factory=list)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def note(self, text: str) -> None:
        line = f"[{self.elapsed:7.1f} s] {text}"
        self.events.append(line)
        print(line, file=sys.stderr, flush=True)

    def moments(self, count: int, within: float = 1.0) -> list[float]:
        """``count`` moments drawn uniformly over the stream (its first ``within``), in
        order."""
        return sorted(self.rng.uniform(0, within * self.horizon_s) for _ in range(count))


class Scenario(Protocol):
    """One kind of fault. ``plan`` draws its moments before the stream starts; ``tick`` is
    called about five times a second while it runs (and until ``done``) and acts on what is
    due; ``recover`` undoes what is still broken when the run ends early; ``figures`` go into
    the report."""

    name: str

    def plan(self, run: Run) -> None: ...

    def tick(self, run: Run) -> None: ...

    def done(self) -> bool: ...

    def recover(self, run: Run) -> None: ...

    def figures(self) -> dict[str, Any]: ...


@dataclass
class KillSchedule:
    """SIGKILL each of ``processes`` ``kills`` times at moments drawn uniformly over the
    stream, and start it again at once (a process killed while it starts up is killed
    again: that is a moment too)."""

    processes: Sequence[str] = tuple(PROCESSES)
    kills: int = 3
    name: str = "kill"
    due: list[tuple[float, str]] = field(default_factory=list)
    killed: Counter[str] = field(default_factory=Counter)

    def plan(self, run: Run) -> None:
        self.due = sorted(
            (run.rng.uniform(0, run.horizon_s), name)
            for name in self.processes
            for _ in range(self.kills)
        )

    def tick(self, run: Run) -> None:
        while self.due and self.due[0][0] <= run.elapsed:
            _, name = self.due.pop(0)
            code = run.loop.kill(name)
            self.killed[name] += 1
            run.loop.restart(name)
            run.note(f"SIGKILL {name} (exit {code}, kill {self.killed[name]}), restarted")

    def done(self) -> bool:
        return not self.due

    def recover(self, run: Run) -> None:
        pass

    def figures(self) -> dict[str, Any]:
        return {"kills": {name: self.killed[name] for name in self.processes}}


@dataclass
class BrokerRestarts:
    """Stop the local broker ``restarts`` times at moments drawn over the stream and start it
    again ``down_s`` later, on its address with its data: what
    :func:`stack.local.restart_broker` does (its two halves, so that the other scenarios go on
    meanwhile). The broker must run on disk (``live.stack(storage="disk")``)."""

    restarts: int = 1
    down_s: float = 10.0
    name: str = "broker-restart"
    due: list[float] = field(default_factory=list)
    back_at: float | None = None
    restarted: int = 0

    def _state_dir(self, run: Run) -> Path:
        state_dir = run.loop.stack.state_dir
        if state_dir is None or "broker" not in local.StackState.load(state_dir).services:
            raise ValueError("broker restarts need the broker on disk (its stack folder)")
        return state_dir

    def plan(self, run: Run) -> None:
        if self.restarts:
            self._state_dir(run)
        self.due = run.moments(self.restarts)

    def tick(self, run: Run) -> None:
        if self.back_at is None and self.due and self.due[0] <= run.elapsed:
            self.due.pop(0)
            local.stop_broker(self._state_dir(run))
            self.back_at = run.elapsed + self.down_s
            run.note(f"broker stopped for {self.down_s:g} s")
        elif self.back_at is not None and self.back_at <= run.elapsed:
            self._start(run)
            run.note(f"broker started again on {run.loop.stack.broker} ({self.restarted})")

    def _start(self, run: Run) -> None:
        broker = local.ensure_broker(self._state_dir(run), "disk").services["broker"]
        if broker.address != run.loop.stack.broker:
            raise RuntimeError(f"the broker came back on {broker.address}, not on its address")
        self.back_at = None
        self.restarted += 1

    def done(self) -> bool:
        return not self.due and self.back_at is None

    def recover(self, run: Run) -> None:
        if self.back_at is not None:
            self._start(run)

    def figures(self) -> dict[str, Any]:
        return {"broker_restarts": self.restarted, "broker_down_s": self.down_s}


@dataclass
class ArgillaStops:
    """Freeze the local Argilla server (SIGSTOP) ``stops`` times for ``stop_s`` seconds at
    moments drawn over the stream; when it thaws (SIGCONT), SIGKILL its Redis and start it
    again ``redis_down_s`` later on its port (:func:`stack.argilla.kill_redis` and
    :func:`~stack.argilla.restart_redis`, as ``tests/integration/argilla/test_outages.py``)."""

    stops: int = 1
    stop_s: float = 60.0
    redis_down_s: float = 5.0
    name: str = "argilla-stop"
    due: list[float] = field(default_factory=list)
    frozen_until: float | None = None
    redis_back_at: float | None = None
    dead_redis: Service | None = None
    stopped: int = 0
    redis_kills: int = 0

    def plan(self, run: Run) -> None:
        self.due = run.moments(self.stops)

    def tick(self, run: Run) -> None:
        argilla = run.loop.stack.argilla
        now = run.elapsed
        if self.frozen_until is None and self.redis_back_at is None:
            if self.due and self.due[0] <= now:
                self.due.pop(0)
                os.kill(argilla.service("argilla").pid, signal.SIGSTOP)
                self.frozen_until = now + self.stop_s
                self.stopped += 1
                run.note(f"Argilla frozen (SIGSTOP) for {self.stop_s:g} s")
        elif self.frozen_until is not None and self.frozen_until <= now:
            os.kill(argilla.service("argilla").pid, signal.SIGCONT)
            self.frozen_until = None
            self.dead_redis = argilla_local.kill_redis(argilla)
            self.redis_kills += 1
            self.redis_back_at = now + self.redis_down_s
            run.note(f"Argilla thawed (SIGCONT); its Redis SIGKILLed for {self.redis_down_s:g} s")
        elif self.redis_back_at is not None and self.redis_back_at <= now:
            self._restart_redis(run)
            alive = argilla.service("argilla-worker").alive()
            run.note(f"Redis started again (Argilla's worker {'alive' if alive else 'DEAD'})")

    def _restart_redis(self, run: Run) -> None:
        if self.dead_redis is not None:
            argilla_local.restart_redis(run.loop.stack.argilla, self.dead_redis)
        self.dead_redis, self.redis_back_at = None, None

    def done(self) -> bool:
        return not self.due and self.frozen_until is None and self.redis_back_at is None

    def recover(self, run: Run) -> None:
        if self.frozen_until is not None:
            os.kill(run.loop.stack.argilla.service("argilla").pid, signal.SIGCONT)
            self.frozen_until = None
        if self.redis_back_at is not None:
            self._restart_redis(run)

    def figures(self) -> dict[str, Any]:
        return {
            "argilla_stops": self.stopped,
            "argilla_stop_s": self.stop_s,
            "redis_kills": self.redis_kills,
        }


@dataclass
class ReplayKill:
    """Make replays happen: ``replays`` times, at moments drawn over the stream, start the
    scorer again with ``ALLOOP_KAFKA__COMMIT_DELAY_S`` (each commit held ``hold_s`` after
    the batch's outputs were acknowledged, which its log says: :data:`connectors.kafka.HELD`),
    SIGKILL it as soon as its log says a batch is held, and start it again as usual: its
    successor scores that batch again, and its copies must be byte-identical. The moments are
    drawn in the first half of the stream, so that batches still come while the held scorer
    starts; an attempt with no held batch after ``wait_s`` is given up (``missed``)."""

    replays: int = 1
    hold_s: float = 300.0
    wait_s: float = 240.0
    name: str = "replay"
    due: list[float] = field(default_factory=list)
    armed: tuple[subprocess.Popen[bytes], int, float] | None = None
    """The held scorer, where its log stood when it started, when to give up."""
    held: list[str] = field(default_factory=list)
    missed: int = 0

    def plan(self, run: Run) -> None:
        self.due = run.moments(self.replays, within=0.5)

    def tick(self, run: Run) -> None:
        loop = run.loop
        if self.armed is None:
            if self.due and self.due[0] <= run.elapsed:
                self.due.pop(0)
                code = loop.kill("scorer")
                log = loop.log("scorer")
                size = log.stat().st_size if log.is_file() else 0
                env = {"ALLOOP_KAFKA__COMMIT_DELAY_S": str(self.hold_s)}
                self.armed = (loop.restart("scorer", env), size, run.elapsed + self.wait_s)
                run.note(f"SIGKILL scorer (exit {code}), restarted with its commits held")
            return
        process, since, give_up = self.armed
        if loop.running["scorer"][1] is not process:  # another scenario killed it
            self.armed = None
            self.due.insert(0, run.elapsed)
            run.note("the held scorer was replaced meanwhile: holding again")
            return
        held = _held_line(loop.log("scorer"), since)
        if held is None and run.elapsed < give_up:
            return
        code = loop.kill("scorer")
        loop.restart("scorer")
        self.armed = None
        if held is None:
            self.missed += 1
            run.note(f"no batch held in {self.wait_s:g} s: scorer restarted as usual")
        else:
            self.held.append(held)
            run.note(f"SIGKILL scorer (exit {code}) while {held} was held: a replay")

    def done(self) -> bool:
        return not self.due and self.armed is None

    def recover(self, run: Run) -> None:
        if self.armed is not None:
            run.loop.kill("scorer")
            run.loop.restart("scorer")
            self.armed = None

    def figures(self) -> dict[str, Any]:
        return {"replay_kills": len(self.held), "replay_misses": self.missed}


def _held_line(log: Path, since: int) -> str | None:
    """The batch (``topic/partition/offset (+n)``) of the first held commit logged after byte
    ``since`` of ``log``."""
    if not log.is_file():
        return None
    with log.open("rb") as file:
        file.seek(since)
        text = file.read().decode("utf-8", "replace")
    found = re.search(rf"(\S+ \(\+\d+\)): {re.escape(HELD)}", text)
    return found.group(1) if found else None
