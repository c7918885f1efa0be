"""A real local Argilla (argilla-server 2.8.0 in its own virtualenv, alloop's SQL search
engine, Redis) per database backend, started once per test session."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stack import argilla as argilla_local
from stack.local import stop_service
from tests.integration.argilla import pg

ROOT = Path(__file__).resolve().parents[3]
# Kept between runs (and ignored by git): installing argilla-server takes about a minute.
VENV = Path(os.environ.get("ALLOOP_TEST_ARGILLA_VENV", ROOT / ".venv-argilla"))


@pytest.fixture(scope="session")
def argilla_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[str], argilla_local.LocalArgilla]]:
    started: dict[str, argilla_local.LocalArgilla] = {}
    databases: list[pg.Postgres] = []

    def start(backend: str) -> argilla_local.LocalArgilla:
        if backend in started:
            return started[backend]
        database_url = None
        if backend == "postgresql":
            try:
                # Not under pytest's tmp folder: it is private to root, and the server runs
                # as the postgres user.
                server = pg.start(Path(tempfile.mkdtemp(prefix="alloop-pg-")))
            except pg.PostgresUnavailable as exc:
                pytest.skip(f"PostgreSQL: {exc}")
            databases.append(server)
            database_url = server.url
        state = tmp_path_factory.mktemp(f"argilla-{backend}")
        started[backend] = argilla_local.start(state, VENV, database_url=database_url)
        return started[backend]

    yield start
    for local in started.values():
        for service in reversed(local.services):
            stop_service(service)
    for server in databases:
        server.stop()
        shutil.rmtree(server.data.parent, ignore_errors=True)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def any_argilla(
    request: pytest.FixtureRequest, argilla_factory: Callable[[str], argilla_local.LocalArgilla]
) -> argilla_local.LocalArgilla:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    return argilla_factory(str(request.param))


@pytest.fixture(scope="session")
def argilla(
    argilla_factory: Callable[[str], argilla_local.LocalArgilla],
) -> argilla_local.LocalArgilla:
    """The SQLite one: for tests of the loop around Argilla rather than of the engine."""
    return argilla_factory("sqlite")
