"""A local Argilla without Elasticsearch: its own virtualenv, Redis, the server and its worker.

argilla-server 2.8.0 pins old fastapi and pydantic and its CLI needs click<8.2, so it lives in
a virtualenv of its own (``argilla.venv``, made on first use) together with alloop's SQL search
engine (``deploy/argilla-sql-engine``). Redis is Debian's ``redis-server`` when installed, else
fakeredis's TCP server. The database is SQLite in the stack's folder, unless
``database_url`` names another one (PostgreSQL).

:func:`start` brings everything up and prepares it for alloop: an owner and an annotator with
API keys, the workspace, the annotator in it, and the webhook to the API. The keys and the
webhook secret are kept in ``argilla.json`` (mode 0600) in the stack's state folder.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from connectors.argilla.setup import (
    ensure_member,
    ensure_webhook,
    ensure_workspace,
    owner_client,
    prune_webhooks,
)
from loop.settings import Settings
from stack.credentials import ArgillaCredentials
from stack.local import Service, StackError, free_port, spawn, stop_service, wait_for_log

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
ENGINE_PACKAGE = ROOT / "deploy" / "argilla-sql-engine"
REQUIREMENTS = [
    "argilla-server==2.8.0",
    "click<8.2",
    "fakeredis>=2.26",
    # PostgreSQL: argilla-server uses psycopg2 (migrations) and asyncpg (the server).
    "asyncpg>=0.29",
    "psycopg2-binary>=2.9",
]
OWNER, ANNOTATOR = "alloop-owner", "annotator"
# ``python -m alloop_argilla_sql`` reads any option from ALLOOP_ARGILLA_CLI_<COMMAND>_<OPTION>:
# the secrets of a new user travel in the environment, never on a command line (``ps``).
PASSWORD_VARIABLE = "ALLOOP_ARGILLA_CLI_DATABASE_USERS_CREATE_PASSWORD"
API_KEY_VARIABLE = "ALLOOP_ARGILLA_CLI_DATABASE_USERS_CREATE_API_KEY"


def _fingerprint(package: Path = ENGINE_PACKAGE) -> str:
    """What Argilla's virtualenv is made of: the requirements and the engine's sources, not
    what a build leaves beside them (``build/``, ``*.egg-info``, byte code), so that a
    virtualenv is made once and not again after its first install wrote those."""
    digest = hashlib.sha256(" ".join(REQUIREMENTS).encode())
    for path in sorted(package.rglob("*")):
        parts = path.relative_to(package).parts
        built = parts[0] == "build" or parts[0].endswith(".egg-info") or "__pycache__" in parts
        if path.is_file() and not built and path.suffix != ".pyc":
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_venv(venv: Path) -> Path:
    """Create or refresh Argilla's virtualenv; return its python. Skipped when up to date."""
    python = venv / "bin" / "python"
    stamp = venv / ".alloop-argilla"
    want = _fingerprint()

    def ready() -> bool:
        return python.exists() and stamp.exists() and stamp.read_text() == want

    if ready():
        return python
    # One install at a time into one virtualenv (tests and benchmarks may start together).
    key = hashlib.sha1(bytes(venv.resolve())).hexdigest()[:16]
    with (Path(tempfile.gettempdir()) / f"alloop-argilla-{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready():
            _install(venv, python)
            stamp.write_text(want)
    return python


def _install(venv: Path, python: Path) -> None:
    if not python.exists():
        logger.info("creating Argilla's virtualenv in %s", venv)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    logger.info("installing argilla-server 2.8.0 and the SQL search engine (once) ...")
    done = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *REQUIREMENTS,
            str(ENGINE_PACKAGE),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise StackError(f"installing Argilla failed: {done.stderr.strip()[-1500:]}")


@dataclass
class LocalArgilla:
    """What :func:`start` started."""

    url: str
    services: list[Service]
    credentials: ArgillaCredentials

    def service(self, name: str) -> Service:
        """The running service named ``name`` (redis, argilla, argilla-worker)."""
        return next(s for s in self.services if s.name == name)


def start_redis(python: Path, state_dir: Path) -> Service:
    """Debian's redis-server if installed, else fakeredis's TCP server; on a free port."""
    port = free_port()
    log = state_dir / "logs" / "redis.log"
    log.unlink(missing_ok=True)
    server = shutil.which("redis-server")
    if server:
        command = [
            server,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
    else:
        command = [str(python), "-m", "alloop_argilla_sql.redis_server", str(port)]
    process = spawn("redis", command, log)
    wait_for_log(process, log, _redis_ready(command), timeout_s=30)
    return Service(
        name="redis", pid=process.pid, command=command, log=str(log), address=f"127.0.0.1:{port}"
    )


def _redis_ready(command: list[str]) -> str:
    """What the log of ``command`` (redis-server or fakeredis) says when it serves."""
    return "Ready to accept connections" if "redis-server" in command[0] else "fakeredis ready"


def kill_redis(local: LocalArgilla) -> Service:
    """SIGKILL the local Argilla's Redis (fault injection); the dead service, for
    :func:`restart_redis`."""
    redis = local.service("redis")
    os.kill(redis.pid, signal.SIGKILL)
    stop_service(redis)  # reaps it
    return redis


def restart_redis(local: LocalArgilla, dead: Service) -> None:
    """Start Redis again with the same command (same port), as `alloop stack up` would."""
    Path(dead.log).unlink(missing_ok=True)  # the old log says "ready" too
    process = spawn("redis", dead.command, Path(dead.log))
    wait_for_log(process, Path(dead.log), _redis_ready(dead.command), timeout_s=30)
    fresh = dead.model_copy(update={"pid": process.pid})
    local.services[local.services.index(dead)] = fresh


def _argilla_env(state_dir: Path, redis: str, database_url: str | None) -> dict[str, str]:
    home = state_dir / "argilla"
    home.mkdir(parents=True, exist_ok=True)
    return {
        "ARGILLA_HOME_PATH": str(home),
        "ARGILLA_DATABASE_URL": database_url or f"sqlite+aiosqlite:///{home / 'argilla.db'}",
        "ARGILLA_REDIS_URL": f"redis://{redis}/0",
        "ARGILLA_SEARCH_ENGINE": "sql",
        "ARGILLA_AUTH_SECRET_KEY": _auth_secret(home),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_OFFLINE": "1",
    }


def _auth_secret(home: Path) -> str:
    path = home / ".auth-secret"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip()


def _cli(
    python: Path, env: dict[str, str], *args: str, hidden_env: dict[str, str] | None = None
) -> str:
    """Run Argilla's command line. ``hidden_env``: more environment variables, secrets kept
    out of error messages. It never prompts: a missing value fails instead."""
    done = subprocess.run(
        [str(python), "-m", "alloop_argilla_sql", *args],
        env={**os.environ, **env, **(hidden_env or {})},
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # no terminal to prompt on
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if done.returncode != 0:
        said = (done.stderr or done.stdout)[-1500:]
        for secret in (hidden_env or {}).values():
            said = said.replace(secret, "***")
        raise StackError(f"argilla {' '.join(args[:3])} failed: {said}")
    return done.stdout


def _ensure_user(
    python: Path, env: dict[str, str], username: str, role: str, key: str, password: str
) -> None:
    """Create the user unless it exists (Argilla's CLI then says so and skips)."""
    try:
        _create_user(python, env, username, role, key, password)
    except StackError as exc:
        if "already exists" not in str(exc):
            raise


def _create_user(
    python: Path, env: dict[str, str], username: str, role: str, key: str, password: str
) -> None:
    _cli(
        python,
        env,
        *("database", "users", "create"),
        *("--username", username, "--first-name", username, "--role", role),
        hidden_env={PASSWORD_VARIABLE: password, API_KEY_VARIABLE: key},
    )
    logger.debug("created Argilla user %s (%s)", username, role)


def wait_until_up(
    url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float = 120
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise StackError(f"Argilla exited with {process.returncode}: {tail.strip()}")
        try:
            if httpx.get(f"{url}/api/v1/status", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise StackError(f"Argilla did not answer at {url} within {timeout_s:.0f}s (see {log})")


def start(
    state_dir: Path,
    venv: Path,
    *,
    webhook_url: str | None = None,
    workspace: str = "alloop",
    database_url: str | None = None,
    job_workers: int = 2,
) -> LocalArgilla:
    """Start Redis, the Argilla server and its worker (a pool of ``job_workers`` processes:
    they send the webhooks), and prepare Argilla for alloop."""
    python = ensure_venv(venv)
    started: list[Service] = []
    try:
        redis = start_redis(python, state_dir)
        started.append(redis)
        env = _argilla_env(state_dir, redis.address or "", database_url)
        _cli(python, env, "database", "migrate")
        previous = _previous_credentials(state_dir)
        owner_key = previous.owner_api_key if previous else secrets.token_urlsafe(24)
        annotator_key = previous.annotator_api_key if previous else secrets.token_urlsafe(24)
        owner_password = previous.owner_password if previous else secrets.token_urlsafe(12)
        annotator_password = previous.annotator_password if previous else secrets.token_urlsafe(12)
        _ensure_user(python, env, OWNER, "owner", owner_key, owner_password)
        _ensure_user(python, env, ANNOTATOR, "annotator", annotator_key, annotator_password)

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = state_dir / "logs" / "argilla.log"
        log.unlink(missing_ok=True)
        command = [
            str(python),
            "-m",
            "alloop_argilla_sql",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        server = spawn("argilla", command, log, env)
        started.append(
            Service(name="argilla", pid=server.pid, command=command, log=str(log), url=url)
        )
        worker_log = state_dir / "logs" / "argilla-worker.log"
        worker_command = [
            *(str(python), "-m", "alloop_argilla_sql", "worker"),
            *("--num-workers", str(job_workers)),
        ]
        worker = spawn("argilla-worker", worker_command, worker_log, env)
        started.append(
            Service(
                name="argilla-worker", pid=worker.pid, command=worker_command, log=str(worker_log)
            )
        )
        wait_until_up(url, server, log)

        with owner_client(url, owner_key) as http:
            workspace_id = ensure_workspace(http, workspace)
            ensure_member(http, workspace_id, ANNOTATOR)
            secret = None
            if webhook_url:
                secret = ensure_webhook(http, webhook_url)
                prune_webhooks(http, keep=webhook_url)  # this stack owns its Argilla
        credentials = ArgillaCredentials(
            url=url,
            owner_api_key=owner_key,
            annotator_api_key=annotator_key,
            owner=OWNER,
            annotator=ANNOTATOR,
            owner_password=owner_password,
            annotator_password=annotator_password,
            webhook_secret=secret,
        )
        credentials.save(state_dir)
        return LocalArgilla(url=url, services=started, credentials=credentials)
    except BaseException:
        for service in reversed(started):
            stop_service(service)
        raise


def _previous_credentials(state_dir: Path) -> ArgillaCredentials | None:
    """Keys from an earlier start on the same database (its users still exist)."""
    try:
        return ArgillaCredentials.load(state_dir)
    except StackError:
        return None


def starter(settings: Settings) -> Callable[[], list[Service]]:
    """What ``alloop stack up`` (and the demo) call to start the local Argilla, configured
    from ``settings``; the webhook points at the API's port."""

    def start_local() -> list[Service]:
        print("starting Argilla (the first time installs it, about a minute) ...", file=sys.stderr)
        local = start(
            settings.state_dir,
            settings.argilla_venv,
            webhook_url=f"http://127.0.0.1:{settings.api.port}/v1/argilla/webhooks",
            workspace=settings.argilla.workspace,
            database_url=settings.argilla.database_url,
            job_workers=settings.argilla.job_workers,
        )
        return local.services

    return start_local
