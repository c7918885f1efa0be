"""The model that serves now: loaded from the registry's promoted version, reloaded when the
pointer moves. Shared by the scorer and the API."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from loop.errors import AlloopError
from loop.models.base import Classifier
from loop.models.factories import load_version
from loop.registry import ModelRegistry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedModel:
    """A loaded classifier and the version it is."""

    version: str
    classifier: Classifier


class ModelWatcher:
    """Holds the promoted model and swaps it when the registry's pointer changes.

    :meth:`refresh` is cheap when nothing changed (one small file read). A version that fails
    to load is logged and skipped; the model that served before keeps serving.
    """

    @property
    def version(self) -> str | None:
        served = self._served
        return served.version if served else None

    def __init__(self, registry: ModelRegistry) -> None:
        self._registry = registry
        self._served: ServedModel | None = None
        self._failed: str | None = None
        self._lock = threading.Lock()

    @property
    def served(self) -> ServedModel | None:
        return self._served

    def refresh(self) -> bool:
        """Load the promoted version if it is not the one held; return whether it changed."""
        with self._lock:
            try:
                wanted = self._registry.promoted()
            except AlloopError as exc:
                logger.error("cannot read the promoted pointer: %s", exc)
                return False
            if wanted != self._failed:
                self._failed = None  # the pointer moved on: a later promotion retries it
            held = self._served.version if self._served else None
            if wanted == held or (wanted is not None and wanted == self._failed):
                return False
            if wanted is None:
                logger.warning("no version is promoted any more; serving nothing")
                self._served = None
                return True
            try:
                classifier = load_version(self._registry, wanted)
            except AlloopError as exc:
                logger.error("cannot load model %s, keeping %s: %s", wanted, held, exc)
                self._failed = wanted
                return False
            self._failed = None
            self._served = ServedModel(version=wanted, classifier=classifier)
            logger.info("now serving model %s (was %s)", wanted, held)
            return True
