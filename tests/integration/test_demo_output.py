"""What a newcomer reads: a short ``alloop demo`` prints alloop's lines and progress bars,
and nothing of the libraries under it (their warnings, their bars, their training dicts);
neither do the logs of the processes it starts. That goes to the library log."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from stack.local import free_port
from tests.conftest import TWEETS
from tests.integration.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OURS = ("tagged", "→ ")
"""How alloop's own progress bars start (ingest's and the demo's)."""
BAR = re.compile(r"\d+%\||\d+(?:\.\d+)?(?:it|s)/(?:s|it)\]|\[\d\d:\d\d<")
LIBRARY_LINES = ("model_head.pkl", "***** Running", "{'", "Loading weights", "Writing model")
GLOG = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d")  # torch's own log lines


def noise(text: str) -> list[str]:
    """The lines (and progress-bar redraws) of ``text`` that are not alloop's own."""
    found = []
    for line in re.split(r"[\r\n]", text):
        library = "Warning" in line or "warn(" in line or any(m in line for m in LIBRARY_LINES)
        library = library or bool(GLOG.match(line))
        if library or (BAR.search(line) and not line.lstrip().startswith(OURS)):
            found.append(line)
    return found


@pytest.mark.timeout(1800)  # a seed model trained in the demo's process, then the stream
def test_a_short_demo_prints_no_library_warnings_or_bars(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ALLOOP_")},
        "ALLOOP_HOME": str(home),
        "ALLOOP_API__PORT": str(free_port()),
        "ALLOOP_STACK__BROKER_STORAGE": "memory",
        "HF_HUB_OFFLINE": "1",
    }
    command = [sys.executable, "-m", "cli", "demo", "--no-argilla", "--limit", "40"]
    options = ["--seed-per-label", "2", "--iterations", "1"]
    try:
        done = subprocess.run(
            [*command, *options, "--dataset", str(TWEETS)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=1500,
        )
    finally:
        subprocess.run(
            [sys.executable, "-m", "cli", "stack", "down"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            timeout=120,
        )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "v0001 trained" in done.stdout and "40 of 40 tweets tagged" in done.stdout
    library_log = home / "logs" / "libraries.log"
    assert f"library log  {library_log}" in done.stdout.splitlines()[0]
    assert re.search(r"^open +http://\S+/(ui|docs)", done.stdout, re.MULTILINE), done.stdout
    assert "tagged: 100%" in done.stderr, "alloop's own progress bars stay"
    assert noise(output) == [], output[-3000:]
    logs = home / "stack" / "logs"
    for name in ("scorer.log", "api.log"):
        assert noise((logs / name).read_text(errors="replace")) == [], name
    assert library_log.is_file(), "what the libraries said went to the library log"
