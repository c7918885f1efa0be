"""Logging, configured once per process."""

from __future__ import annotations

import logging
import os
import warnings


def configure(level: str = "INFO") -> None:
    """Log to stderr with identifiers first; quiet the chattier libraries."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    for noisy in ("kafka", "httpx", "urllib3", "sentence_transformers", "setfit", "datasets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("kafka.coordinator").setLevel(logging.ERROR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
