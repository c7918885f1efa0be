"""A trainer SIGKILLed while its training round runs takes the round with it: the round is a
child process, and a killed parent neither waits for it nor kills it. Found by the chaos
harness (bench/chaos.py): each kill of the trainer mid-round left a round running beside
the next trainer's, racing it to publish."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loop.labels import LabelStore
from loop.messages import LabelEvent

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TRAINER = "from loop.settings import Settings; from workers.trainer import run_round; run_round(Settings())"


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")  # a zombie has ended (nobody may reap it in a container)


def test_a_round_ends_when_its_trainer_is_killed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    LabelStore(home / "labels" / "labels.db").add(
        LabelEvent(
            id=f"d{i}",
            text=f"shares {'soar' if i % 2 else 'plunge'} {i}",
            label="up" if i % 2 else "down",
            response_id=f"r{i}",
        )
        for i in range(20)
    )
    registry = home / "registry"
    registry.mkdir(parents=True)
    env = {**os.environ, "ALLOOP_HOME": str(home), "ALLOOP_TRAINER__MODEL_KIND": "keywords"}
    # The registry's lock held here: the round cannot publish, so it runs until it is ended.
    with (registry / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        trainer = subprocess.Popen([sys.executable, "-c", TRAINER], env=env, cwd=ROOT)
        try:
            deadline = time.monotonic() + 60
            while not children(trainer.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            (round_pid,) = children(trainer.pid)
            time.sleep(3)  # well into the round
            trainer.send_signal(signal.SIGKILL)
            trainer.wait()
            deadline = time.monotonic() + 20
            while running(round_pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            orphan = running(round_pid)
        finally:
            if trainer.poll() is None:
                trainer.kill()
            for pid in children(trainer.pid) if trainer.poll() is None else []:
                os.kill(pid, signal.SIGKILL)
        if orphan:
            os.kill(round_pid, signal.SIGKILL)
        assert not orphan, "the round went on after its trainer was killed"
