"""The drift monitor's reference windows on disk, one file per served version, so that a
scorer that restarts compares the stream with the reference it had learned instead of
learning a new one from the first windows after the restart (which may already be drifted).

A file is a NumPy ``.npz`` archive read without pickle: the arrays of each window (``0.embeddings``,
``0.probabilities``, ``0.labels``...) and ``meta``, a JSON string with the rest (sizes, the
multi-label flag, the entity mentions, the window size the reference was cut with). It is
written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from loop.drift.base import Window

logger = logging.getLogger(__name__)

FORMAT = 1
UNSCORED_FILE = "unscored"
"""The file name of the reference taken while no model serves (the cold start's embeddings)."""
KEEP = 20
"""Reference files kept: the newest written; older versions rarely serve again."""


def reference_file(folder: Path, version: str | None) -> Path:
    """Where the reference of ``version`` (None: no model serves) is kept."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", version) if version else UNSCORED_FILE
    return folder / f"{name}.npz"


def save_reference(
    folder: Path, version: str | None, windows: Sequence[Window], window_size: int
) -> Path:
    """Write the reference windows of ``version``; the oldest files beyond :data:`KEEP` go."""
    arrays: dict[str, Any] = {}
    meta: dict[str, Any] = {
        "format": FORMAT,
        "version": version,
        "window_size": window_size,
        "windows": [],
    }
    for i, window in enumerate(windows):
        if window.embeddings is not None:
            arrays[f"{i}.embeddings"] = window.embeddings
        if window.probabilities is not None:
            arrays[f"{i}.probabilities"] = window.probabilities
        meta["windows"].append(
            {
                "size": window.size,
                "labels": list(window.labels),
                "multi_label": window.multi_label,
                "mentions": None if window.mentions is None else [list(m) for m in window.mentions],
            }
        )
    arrays["meta"] = np.array(json.dumps(meta))
    folder.mkdir(parents=True, exist_ok=True)
    path = reference_file(folder, version)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".reference-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as out:
            np.savez(out, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    prune(folder, KEEP)
    return path


def load_reference(folder: Path, version: str | None, window_size: int) -> list[Window]:
    """The reference windows stored for ``version``; none when there is no file, when it
    cannot be read, or when it was cut with another window size."""
    path = reference_file(folder, version)
    if not path.exists():
        return []
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("format") != FORMAT or meta.get("version") != version:
                return []
            if meta.get("window_size") != window_size:
                logger.info(
                    "drift: the stored reference of %s has windows of %s documents, not %d; "
                    "a new one starts",
                    version or "no model",
                    meta.get("window_size"),
                    window_size,
                )
                return []
            windows = []
            for i, about in enumerate(meta["windows"]):
                windows.append(
                    Window(
                        size=int(about["size"]),
                        embeddings=data.get(f"{i}.embeddings"),
                        probabilities=data.get(f"{i}.probabilities"),
                        labels=tuple(about["labels"]),
                        multi_label=bool(about["multi_label"]),
                        mentions=about["mentions"],
                    )
                )
            return windows
    except Exception as exc:  # a damaged file: learn the reference again, say so
        logger.warning(
            "drift: cannot read the stored reference %s (%s); a new one starts", path, exc
        )
        return []


def prune(folder: Path, keep: int) -> None:
    """Remove all but the ``keep`` reference files written last."""
    files = sorted(folder.glob("*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[keep:]:
        old.unlink(missing_ok=True)
