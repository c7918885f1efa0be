"""The demo's processes: a scorer, a labeler, a trainer and the API on the local stack,
each started once and registered in the stack's state."""

from __future__ import annotations

import logging
import os
import secrets
import sys
import time

import httpx

from loop.settings import Settings
from stack import local

logger = logging.getLogger(__name__)


def python_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli", *args]


def ensure_scorer(settings: Settings, env: dict[str, str]) -> local.Service:
    state = local.StackState.load(settings.state_dir)
    current = state.services.get("scorer")
    if current is not None and current.alive():
        return current
    log = settings.state_dir / "logs" / "scorer.log"
    log.unlink(missing_ok=True)
    command = python_command("worker", "scorer", "--worker-id", "demo-scorer")
    process = local.spawn("scorer", command, log, env)
    local.wait_for_log(process, log, "assigned partitions", timeout_s=120)
    service = local.Service(name="scorer", pid=process.pid, command=command, log=str(log))
    local.register(settings.state_dir, service)
    return service


def ensure_worker(
    settings: Settings, name: str, argv: list[str], env: dict[str, str]
) -> local.Service:
    """Start ``alloop worker ...`` as a stack service (stopped by ``alloop stack down``)."""
    state = local.StackState.load(settings.state_dir)
    current = state.services.get(name)
    if current is not None and current.alive():
        return current
    log = settings.state_dir / "logs" / f"{name}.log"
    log.unlink(missing_ok=True)
    command = python_command(*argv)
    process = local.spawn(name, command, log, env)
    local.wait_for_log(process, log, "assigned partitions", timeout_s=180)
    service = local.Service(name=name, pid=process.pid, command=command, log=str(log))
    local.register(settings.state_dir, service)
    return service


def api_key(settings: Settings) -> str:
    """The configured key, or one generated for the local stack and kept with 0600."""
    if settings.api.keys:
        return settings.api.keys[0].get_secret_value()
    file = settings.state_dir / "api_key"
    if not file.is_file():
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(24))
    return file.read_text().strip()


def ensure_api(settings: Settings, env: dict[str, str], key: str) -> local.Service:
    state = local.StackState.load(settings.state_dir)
    current = state.services.get("api")
    if current is not None and current.alive():
        return current
    port = settings.api.port
    try:
        import socket

        with socket.socket() as probe:
            probe.bind((settings.api.host, port))
    except OSError:
        port = local.free_port(settings.api.host)
    url = f"http://{settings.api.host}:{port}"
    log = settings.state_dir / "logs" / "api.log"
    log.unlink(missing_ok=True)
    command = python_command("api", "--port", str(port))
    process = local.spawn("api", command, log, {**env, "ALLOOP_API__KEYS": key})
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            raise local.StackError(f"the API exited with {process.returncode}; see {log}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise local.StackError(f"the API did not answer on {url}/health; see {log}")
        time.sleep(0.5)
    service = local.Service(name="api", pid=process.pid, command=command, log=str(log), url=url)
    local.register(settings.state_dir, service)
    return service
