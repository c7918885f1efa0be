"""The real stack for benchmarks: one broker and one local Argilla, and per run a private set
of topics, an Argilla dataset prefix, a home folder and the loop's processes."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WEBHOOK_PATH = "/v1/argilla/webhooks"


@dataclass
class Stack:
    """A running broker and local Argilla (``argilla`` is stack.argilla's handle);
    ``state_dir``: the stack folder of a broker on disk, which can be restarted there."""

    scratch: Path
    broker: str
    argilla: Any
    state_dir: Path | None = None


@contextmanager
def stack(
    prefix: str = "alloop-bench-", storage: str = "memory", venv: Path | None = None
) -> Iterator[Stack]:
    """Start a broker (in memory, or on ``storage="disk"`` with its store, so that it can be
    restarted) and a local Argilla (from the virtualenv ``venv``, by default the checkout's
    ``.venv-argilla``) in a temporary folder; stop them all at the end."""
    import tempfile

    from stack import argilla as argilla_local
    from stack.local import down, ensure_broker, start_broker, stop_service

    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        scratch = Path(folder)
        state_dir = scratch / "stack"
        if storage == "memory":
            service = start_broker(state_dir)
            address = service.address
        else:
            address = ensure_broker(state_dir, storage).services["broker"].address

        def stop_broker() -> None:
            if storage == "memory":
                stop_service(service)
            else:
                down(state_dir)  # the broker and its store

        try:
            local = argilla_local.start(scratch / "argilla", venv or ROOT / ".venv-argilla")
        except BaseException:
            stop_broker()
            raise
        try:
            yield Stack(scratch, address or "", local, state_dir if storage != "memory" else None)
        finally:
            for argilla_service in reversed(local.services):
                stop_service(argilla_service)
            stop_broker()


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass
class Loop:
    """One run's private loop: topics and Argilla datasets named after ``prefix``, its own
    ALLOOP_HOME, and the processes started with :meth:`start` (stopped by :meth:`stop`)."""

    stack: Stack
    prefix: str
    env: dict[str, str]
    home: Path
    port: int
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    running: dict[str, tuple[list[str], subprocess.Popen[bytes]]] = field(default_factory=dict)
    """The latest process started under each name, with its arguments (for :meth:`restart`)."""

    @classmethod
    def create(cls, stack: Stack, name: str, extra: dict[str, str] | None = None) -> Loop:
        from connectors.argilla.setup import ensure_webhook, owner_client
        from stack.local import free_port

        prefix = f"{name}-{secrets.token_hex(3)}"
        home = stack.scratch / prefix
        home.mkdir(parents=True)
        port = free_port()
        credentials = stack.argilla.credentials
        with owner_client(stack.argilla.url, credentials.owner_api_key) as http:
            secret = ensure_webhook(http, f"http://127.0.0.1:{port}{WEBHOOK_PATH}")
        env = {
            "ALLOOP_HOME": str(home),
            "ALLOOP_KAFKA__BOOTSTRAP_SERVERS": stack.broker,
            **{
                f"ALLOOP_KAFKA__TOPICS__{t.upper()}": f"{prefix}.{t}"
                for t in ("raw", "tagged", "candidates", "labels", "models")
            },
            "ALLOOP_ARGILLA__URL": stack.argilla.url,
            "ALLOOP_ARGILLA__API_KEY": credentials.owner_api_key,
            "ALLOOP_ARGILLA__DATASET_PREFIX": prefix,
            "ALLOOP_ARGILLA__WEBHOOK_SECRET": secret,
            "ALLOOP_ARGILLA__LABELER_GROUP_ID": f"{prefix}-labeler",
            "ALLOOP_SCORER__GROUP_ID": f"{prefix}-scorer",
            "ALLOOP_TRAINER__GROUP_ID": f"{prefix}-trainer",
            "ALLOOP_API__PORT": str(port),
            "ALLOOP_API__RELOAD_CHECK_S": "1",
            "ALLOOP_SCORER__RELOAD_CHECK_S": "1",
            "ALLOOP_KAFKA__SESSION_TIMEOUT_MS": "6000",
            "ALLOOP_KAFKA__HEARTBEAT_INTERVAL_MS": "1000",
            **(extra or {}),
        }
        return cls(stack, prefix, env, home, port)

    def topic(self, name: str) -> str:
        return f"{self.prefix}.{name}"

    def log(self, name: str) -> Path:
        return self.home / f"{name}.log"

    def start(
        self, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Run ``alloop ARGV`` in the background (with ``env`` added to the loop's settings
        for this start only), its output in ``<home>/<name>.log``."""
        with self.log(name).open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "cli", *argv],
                env={**os.environ, **self.env, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        self.processes.append(process)
        self.running[name] = (argv, process)
        return process

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        """Send ``sig`` to the process named ``name`` and wait for it to end; its exit code."""
        _, process = self.running[name]
        if process.poll() is None:
            process.send_signal(sig)
        return process.wait(timeout=60)

    def restart(self, name: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start ``name`` again with the arguments it was started with (its log goes on),
        and ``env`` for this start only."""
        argv, process = self.running[name]
        if process.poll() is None:
            raise RuntimeError(f"the {name} is still running (pid {process.pid})")
        self.processes.remove(process)
        return self.start(name, argv, env)

    def wait_assigned(self, *names: str, timeout: float = 180) -> None:
        """Wait until each named consumer process has joined its group."""
        for name in names:
            wait_for(_says(self.log(name), "assigned partitions"), timeout, f"the {name}")

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"

    def stop(self) -> None:
        """Stop the processes and remove the run's Argilla webhook."""
        from connectors.argilla.setup import owner_client, remove_webhook

        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()
        argilla = self.stack.argilla
        with owner_client(argilla.url, argilla.credentials.owner_api_key) as http:
            remove_webhook(http, self.webhook_url)


def _says(log: Path, text: str) -> Callable[[], bool]:
    return lambda: log.is_file() and text in log.read_text()
