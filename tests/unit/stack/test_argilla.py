"""The local Argilla's secrets never appear on a command line (``ps`` shows those to every
user of the machine); they travel in the environment of the one process that needs them."""

from __future__ import annotations

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
