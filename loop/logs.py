"""Logging, configured once per process.

alloop's own lines go to stderr. What the libraries under it say (their log lines, Python
warnings, their progress bars) is not for the person at the terminal: it goes to the
library log, ``$ALLOOP_HOME/logs/libraries.log`` (``Settings.library_log``), shared by every
alloop process, or nowhere when no file is given. Every process configures this here: the
``alloop`` commands (workers, the API, the demo) through ``cli.common.load_settings``, a
training round's process in ``workers.train_round``.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

LIBRARIES = (
    "kafka",  # alloop says itself when the broker is unreachable (connectors/retry.py)
    "setfit",
    "transformers",
    "sentence_transformers",
    "datasets",
    "huggingface_hub",
    "torch",
    "accelerate",
    "filelock",
    "argilla",
    "httpx",
    "httpcore",
    "urllib3",
    "py.warnings",  # Python warnings, through logging.captureWarnings
)
"""Loggers whose lines go to the library log instead of the terminal."""

QUIET_ENVIRONMENT = {
    "TOKENIZERS_PARALLELISM": "false",
    "TRANSFORMERS_VERBOSITY": "error",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # transformers' "Loading weights", "Writing model shards"
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
}
"""Read by the libraries when they are imported: set before, in this process and (inherited)
in every process it starts."""

_library_handler: logging.Handler = logging.NullHandler()


def configure(level: str = "INFO", library_log: Path | None = None) -> None:
    """Log to stderr with identifiers first; the libraries' lines, warnings and progress bars
    to ``library_log`` (or nowhere)."""
    global _library_handler
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    logging.getLogger("kafka.coordinator").setLevel(logging.ERROR)
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.captureWarnings(True)
    if library_log is not None:
        library_log.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(library_log, encoding="utf-8", delay=True)
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s {os.getpid()} %(levelname)s %(name)s: %(message)s")
        )
    else:
        handler = logging.NullHandler()
    _library_handler.close()
    _library_handler = handler
    quiet_libraries()


def quiet_libraries() -> None:
    """Send the libraries' loggers (their warnings and errors) to the library log again, and
    turn their progress bars off.

    Some libraries set up their own terminal handler when they are first imported (SetFit also
    turns its verbosity to INFO), after :func:`configure` ran: code that imports one calls
    this afterwards. Cheap, and harmless to call again."""
    for name in LIBRARIES:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.addHandler(_library_handler)
        # Not INFO: some libraries chat at INFO (torch's compiler at exit), and
        # sentence-transformers shows its progress bars when its logger is at INFO.
        logger.setLevel(logging.WARNING)
        logger.propagate = False
    transformers = sys.modules.get("transformers")
    if transformers is not None:  # it read the environment at import: tell it again
        transformers.utils.logging.disable_progress_bar()
