"""The model registry: immutable versions in a folder and a promoted pointer.

Layout::

    <root>/versions/v0001/model/      the weights, in the model library's own format
    <root>/versions/v0001/card.json   what the version is (labels, training arguments, counts)
    <root>/versions/v0001/metrics.json  its evaluation, written once it has been evaluated
    <root>/promoted.json              {"version": ..., "history": [...earlier promotions]}
    <root>/baseline.json              the scores of what served before any version (patterns)

A version is written under a temporary name (``versions/.staging-<id>/``, held by a lock on
``versions/.staging-<id>.lock`` while its publish runs), flushed to disk (every file and folder of the
weights, then the card) and renamed into place, and the folder that holds the new name is
flushed too: a crash mid-publish, or a power cut right after it, leaves no half version. The
pointer is replaced atomically (temporary file, fsync, rename, fsync of its folder) under a
lock, so readers always see either the old or the new version, never a torn file. Each
publish first removes the staging folders of publishes that died (a killed round): those whose
lock nobody holds.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from loop.errors import NothingToRollBack, PointerMoved, RegistryError, VersionNotFound

logger = logging.getLogger(__name__)

VERSION_PATTERN = re.compile(r"^v(\d{4,})$")
STAGING_PREFIX = ".staging-"
STALE_STAGING_S = 3600.0
"""Age after which a staging folder without a lock file (left by an older alloop) is removed."""


class Unchecked(Enum):
    """The type of :data:`UNCHECKED`."""

    UNCHECKED = "unchecked"


UNCHECKED = Unchecked.UNCHECKED
"""``promote(version)`` without ``expected``: move the pointer whatever it points at."""


class ModelCard(BaseModel):
    """What a model version is. Written once, with the weights."""

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    version: str
    task: str = "classification"
    kind: str = "setfit"
    labels: list[str]
    training_args: dict[str, Any] = Field(default_factory=dict)
    counts: dict[str, Any] = Field(default_factory=dict)
    parent: str | None = None
    created_at: datetime
    notes: str | None = None
    metrics: dict[str, Any] | None = None


class Promotion(BaseModel):
    """The promoted pointer and the promotions before it, newest last."""

    version: str | None = None
    history: list[str] = Field(default_factory=list)
    changed_at: datetime | None = None


def _fsync(path: Path) -> None:
    """Flush a file's data, or a folder's entries, to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """Flush every file and folder below ``root``, each folder after what it holds."""
    if not root.is_dir():
        _fsync(root)
        return
    for folder, _, files in os.walk(root, topdown=False):
        for name in files:
            _fsync(Path(folder) / name)
        _fsync(Path(folder))


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync(path.parent)


class ModelRegistry:
    """Versions in a folder; safe to share between processes on one filesystem."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.versions_dir = root / "versions"
        self.pointer = root / "promoted.json"

    def _ensure(self) -> None:
        self.versions_dir.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self._ensure()
        with (self.root / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # versions -----------------------------------------------------------------------------

    def versions(self) -> list[str]:
        """All published versions, oldest first."""
        if not self.versions_dir.is_dir():
            return []
        found = [
            p.name
            for p in self.versions_dir.iterdir()
            if p.is_dir() and VERSION_PATTERN.match(p.name)
        ]
        return sorted(found, key=lambda name: int(name[1:]))

    def latest(self) -> str | None:
        versions = self.versions()
        return versions[-1] if versions else None

    def path(self, version: str) -> Path:
        """Folder of a version; raises :class:`VersionNotFound` if there is none."""
        if not VERSION_PATTERN.match(version):
            raise VersionNotFound(f"{version!r} is not a version name (expected v0001 and so on)")
        folder = self.versions_dir / version
        if not (folder / "card.json").is_file():
            raise VersionNotFound(f"no model version {version!r}")
        return folder

    def model_path(self, version: str) -> Path:
        return self.path(version) / "model"

    def card(self, version: str) -> ModelCard:
        folder = self.path(version)
        try:
            card = json.loads((folder / "card.json").read_text())
            metrics_file = folder / "metrics.json"
            if metrics_file.is_file():
                card["metrics"] = json.loads(metrics_file.read_text())
            return ModelCard.model_validate(card)
        except ValueError as exc:  # bad JSON or a card that does not fit ModelCard
            raise RegistryError(f"model version {version!r} has an unreadable card: {exc}") from exc

    def cards(self) -> list[ModelCard]:
        return [self.card(version) for version in self.versions()]

    def publish(
        self,
        save: Callable[[Path], None],
        *,
        labels: list[str],
        task: str = "classification",
        kind: str = "setfit",
        training_args: dict[str, Any] | None = None,
        counts: dict[str, Any] | None = None,
        parent: str | None = None,
        notes: str | None = None,
    ) -> ModelCard:
        """Write a new version: ``save(folder)`` writes the weights, then the card is added and
        the whole folder is renamed into place under the next free version name."""
        self._ensure()
        self.clean_staging()
        with self._staging() as staging:
            save(staging / "model")
            _fsync_tree(staging / "model")
            with self._locked():
                version = f"v{len(self.versions()) + 1:04d}"
                while (self.versions_dir / version).exists():
                    version = f"v{int(version[1:]) + 1:04d}"
                card = ModelCard(
                    version=version,
                    task=task,
                    kind=kind,
                    labels=labels,
                    training_args=training_args or {},
                    counts=counts or {},
                    parent=parent,
                    created_at=datetime.now(UTC),
                    notes=notes,
                )
                _write_atomic(staging / "card.json", card.model_dump_json(indent=2).encode())
                os.rename(staging, self.versions_dir / version)
                _fsync(self.versions_dir)
        return card

    @contextmanager
    def _staging(self) -> Iterator[Path]:
        """A fresh staging folder, locked for as long as the publish runs; gone afterwards
        (renamed into a version, or removed when the publish failed)."""
        name = f"{STAGING_PREFIX}{uuid.uuid4().hex}"
        folder, lock_file = self.versions_dir / name, self.versions_dir / f"{name}.lock"
        with lock_file.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                folder.mkdir()
                yield folder
            finally:
                shutil.rmtree(folder, ignore_errors=True)
                lock_file.unlink(missing_ok=True)

    def attach_metrics(self, version: str, metrics: dict[str, Any]) -> None:
        """Record a version's evaluation. The weights and the card stay as they were."""
        folder = self.path(version)
        _write_atomic(folder / "metrics.json", json.dumps(metrics, indent=2).encode())

    def baseline(self) -> dict[str, Any] | None:
        """The scores of what serves when no version is promoted (the entity patterns), if
        they were recorded: ``{"name": ..., "evaluation": ..., "predictions": ...}``."""
        path = self.root / "baseline.json"
        if not path.is_file():
            return None
        try:
            held: dict[str, Any] = json.loads(path.read_text())
        except ValueError as exc:
            raise RegistryError(f"{path} is unreadable: {exc}") from exc
        return held

    def attach_baseline(self, metrics: dict[str, Any]) -> None:
        """Record the scores of the baseline (see :meth:`baseline`)."""
        self._ensure()
        _write_atomic(self.root / "baseline.json", json.dumps(metrics, indent=2).encode())

    def clean_staging(self) -> int:
        """Remove what publishes that died left behind; returns how many folders went.

        A running publish holds the lock file beside its folder, so its folder stays. A
        folder without a lock file (from a release before the lock files) goes once it is
        :data:`STALE_STAGING_S` old."""
        if not self.versions_dir.is_dir():
            return 0
        removed = 0
        for entry in self.versions_dir.iterdir():
            if entry.name.startswith(STAGING_PREFIX) and not entry.name.endswith(".lock"):
                removed += self._remove_if_abandoned(entry)
        if removed:
            logger.info("removed %d staging folder(s) of dead publishes", removed)
        return removed

    def _remove_if_abandoned(self, folder: Path) -> bool:
        lock_file = folder.with_name(f"{folder.name}.lock")
        try:
            fd = os.open(lock_file, os.O_RDWR)
        except FileNotFoundError:
            try:
                age = time.time() - folder.stat().st_mtime
            except FileNotFoundError:  # published or removed meanwhile
                return False
            if age < STALE_STAGING_S:
                return False
            shutil.rmtree(folder, ignore_errors=True)
            return True
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # its publish is running
                return False
            gone = not folder.exists()
            shutil.rmtree(folder, ignore_errors=True)
            lock_file.unlink(missing_ok=True)
            return not gone
        finally:
            os.close(fd)

    # the promoted pointer -----------------------------------------------------------------

    def promotion(self) -> Promotion:
        if not self.pointer.is_file():
            return Promotion()
        try:
            return Promotion.model_validate_json(self.pointer.read_bytes())
        except ValueError as exc:
            raise RegistryError(f"{self.pointer} is unreadable: {exc}") from exc

    def promoted(self) -> str | None:
        """The version that serves now, if any."""
        return self.promotion().version

    def promote(self, version: str, *, expected: str | Unchecked | None = UNCHECKED) -> Promotion:
        """Point at ``version``; the version that served before can be rolled back to.

        ``expected`` is the pointer the caller read (``None``: nothing was promoted). When the
        pointer has moved since (a person promoted or rolled back meanwhile), nothing changes
        and :class:`PointerMoved` is raised: compare and write happen under the registry's
        lock, so two processes cannot interleave. Without ``expected`` the promotion is
        unconditional (a person's). Promoting the version already promoted changes nothing.
        """
        self.path(version)
        with self._locked():
            current = self.promotion()
            if current.version == version:
                return current
            if expected is not UNCHECKED and current.version != expected:
                raise PointerMoved(expected, current.version)
            history = [*current.history, current.version] if current.version else current.history
            updated = Promotion(version=version, history=history, changed_at=datetime.now(UTC))
            _write_atomic(self.pointer, updated.model_dump_json(indent=2).encode())
            return updated

    def rollback(self) -> Promotion:
        """Point back at the version promoted before the current one."""
        with self._locked():
            current = self.promotion()
            if not current.history:
                raise NothingToRollBack("no earlier promoted version to roll back to")
            *rest, previous = current.history
            updated = Promotion(version=previous, history=rest, changed_at=datetime.now(UTC))
            _write_atomic(self.pointer, updated.model_dump_json(indent=2).encode())
            return updated
