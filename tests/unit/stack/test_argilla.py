"""The local Argilla: its secrets never appear on a command line (``ps`` shows those to every
user of the machine), and its virtualenv is made once."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from stack import argilla as argilla_local

KEY, PASSWORD = "owner-key-0123456789abcdef", "pass-9876543210"


def test_creating_a_user_passes_its_password_and_key_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[list[str], dict[str, Any]]] = []

    def run(argv: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
        calls.append((argv, options))
        return subprocess.CompletedProcess(argv, 0, "User successfully created:\n", "")

    monkeypatch.setattr(argilla_local.subprocess, "run", run)
    env = {"ARGILLA_HOME_PATH": "/tmp/argilla"}

    argilla_local._create_user(
        Path("/venv/bin/python"), env, "alloop-owner", "owner", KEY, PASSWORD
    )

    [(argv, options)] = calls
    assert not any(KEY in part or PASSWORD in part for part in argv), argv
    assert argv[3:6] == ["database", "users", "create"]
    child_env = options["env"]
    assert child_env[argilla_local.PASSWORD_VARIABLE] == PASSWORD
    assert child_env[argilla_local.API_KEY_VARIABLE] == KEY
    assert child_env["ARGILLA_HOME_PATH"] == "/tmp/argilla"
    assert options["stdin"] == subprocess.DEVNULL, "a missing secret fails, it never prompts"
    assert argilla_local.PASSWORD_VARIABLE not in env, "the caller's environment is untouched"


def test_the_virtualenv_is_not_made_again_for_what_its_own_install_left_in_the_engine(
    tmp_path: Path,
) -> None:
    engine = tmp_path / "engine"
    shutil.copytree(
        argilla_local.ENGINE_PACKAGE, engine, ignore=shutil.ignore_patterns("build", "*.egg-info")
    )
    before = argilla_local._fingerprint(engine)
    # What pip's in-tree build of the engine leaves behind.
    (engine / "build" / "lib").mkdir(parents=True)
    (engine / "build" / "lib" / "engine.py").write_text("built copy\n")
    (engine / "alloop_argilla_sql.egg-info").mkdir()
    (engine / "alloop_argilla_sql.egg-info" / "SOURCES.txt").write_text("engine.py\n")
    assert argilla_local._fingerprint(engine) == before
    # A change to the engine's sources does make it again.
    source = next((engine / "alloop_argilla_sql").glob("*.py"))
    source.write_text(source.read_text() + "\n# changed\n")
    assert argilla_local._fingerprint(engine) != before
