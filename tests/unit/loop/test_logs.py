"""Every alloop process keeps the libraries' warnings and log lines off the terminal: they go
to the library log."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

SCRIPT = """
import logging, sys, warnings
from pathlib import Path
from loop import logs

logs.configure("INFO", Path(sys.argv[1]))
logging.getLogger("alloop.demo").info("our own line")
warnings.warn("pin_memory is set but no accelerator is found", UserWarning)
logging.getLogger("transformers.modeling_utils").warning("a library's warning")
logging.getLogger("sentence_transformers").info("a library's chatter")
logging.getLogger("kafka.net.selector").warning("a task ran for 0.4s")
# A library that sets up its own terminal handler when imported, after configure (SetFit):
chatty = logging.getLogger("setfit")
chatty.addHandler(logging.StreamHandler())
chatty.setLevel(logging.INFO)
chatty.propagate = False
logs.quiet_libraries()
chatty.warning("model_head.pkl not found")
"""


def test_library_warnings_and_lines_go_to_the_library_log_and_ours_to_stderr(
    tmp_path: Path,
) -> None:
    library_log = tmp_path / "logs" / "libraries.log"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(library_log)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    terminal = done.stdout + done.stderr
    assert "INFO alloop.demo: our own line" in done.stderr
    for library in ("pin_memory", "a library's warning", "model_head.pkl", "chatter", "0.4s"):
        assert library not in terminal
    kept = library_log.read_text()
    assert "UserWarning: pin_memory is set" in kept
    assert "WARNING transformers.modeling_utils: a library's warning" in kept
    assert "WARNING setfit: model_head.pkl not found" in kept
    assert "WARNING kafka.net.selector: a task ran for 0.4s" in kept
    assert "chatter" not in kept, "the libraries' INFO lines are dropped"


def test_without_a_library_log_the_libraries_say_nothing() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.replace("Path(sys.argv[1])", "None")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    assert done.stdout == "" and done.stderr.strip().endswith("INFO alloop.demo: our own line")
