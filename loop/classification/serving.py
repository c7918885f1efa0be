"""What serves now: the promoted version of a registry, loaded, and reloaded when the pointer
moves. Shared by the scorer and the API, for the classifier and the entity extractor."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from loop.classification.base import Classifier
from loop.classification.factories import load_version
from loop.embeddings.precision import Precision
from loop.errors import AlloopError, ModelError
from loop.registry import ModelRegistry

logger = logging.getLogger(__name__)

T = TypeVar("T")

WARM_UP_TEXT = "Warming up: AAPL and BTC up 2% as EUR/USD slips."
"""What a freshly loaded version is run on once before it serves (:meth:`Watcher.warm`)."""


@dataclass(frozen=True)
class ServedModel:
    """A loaded classifier and the version it is."""

    version: str
    classifier: Classifier


class Watcher(Generic[T]):
    """Holds what the promoted version loads into and swaps it when the pointer changes.

    :meth:`refresh` is cheap when nothing changed (one small file read). A new version is
    loaded and warmed up (:meth:`warm`) before it replaces what serves. A version that fails
    to load or to warm up is logged and skipped; what served before keeps serving.
    """

    what = "model"
    """What the logs call it."""
    verb = "serving"

    def __init__(self, registry: ModelRegistry) -> None:
        self._registry = registry
        self._served: T | None = None
        self._held: str | None = None
        self._failed: str | None = None
        self._lock = threading.Lock()

    def load(self, version: str) -> T:
        """Load ``version`` from the registry; raise :class:`AlloopError` when it cannot."""
        raise NotImplementedError

    def warm(self, loaded: T) -> None:
        """Run ``loaded`` once on :data:`WARM_UP_TEXT`, so that what a model builds at its
        first call (an int8 copy of the encoder and its traced graph: about half a second on
        2 CPUs) is built here, while the version before still serves, and not in the first
        batch or request after the swap. Raise to refuse the version."""

    def wanted(self) -> str | None:
        """The version to hold: the promoted one."""
        return self._registry.promoted()

    @property
    def version(self) -> str | None:
        return self._held

    @property
    def served(self) -> T | None:
        return self._served

    def refresh(self) -> bool:
        """Load the promoted version if it is not the one held; return whether it changed."""
        with self._lock:
            try:
                wanted = self.wanted()
            except AlloopError as exc:
                logger.error("cannot read the registry: %s", exc)
                return False
            if wanted != self._failed:
                self._failed = None  # the pointer moved on: a later promotion retries it
            held = self._held
            if wanted == held or (wanted is not None and wanted == self._failed):
                return False
            if wanted is None:
                logger.warning("no %s version any more; holding nothing", self.what)
                self._served, self._held = None, None
                return True
            try:
                loaded = self._warmed(self.load(wanted), wanted)
            except AlloopError as exc:
                logger.error("cannot load %s %s, keeping %s: %s", self.what, wanted, held, exc)
                self._failed = wanted
                return False
            self._failed = None
            self._served, self._held = loaded, wanted
            logger.info("now %s %s %s (was %s)", self.verb, self.what, wanted, held)
            return True

    def _warmed(self, loaded: T, version: str) -> T:
        try:
            self.warm(loaded)
        except Exception as exc:  # it loaded but cannot compute: it must not serve
            raise ModelError(f"{self.what} {version} failed its warm-up: {exc}") from exc
        return loaded


class ModelWatcher(Watcher[ServedModel]):
    """The promoted classifier, computing in ``precision`` (serving's ``ALLOOP_PRECISION``)."""

    def __init__(self, registry: ModelRegistry, precision: Precision = Precision.FLOAT32) -> None:
        super().__init__(registry)
        self._precision = precision

    def load(self, version: str) -> ServedModel:
        classifier = load_version(self._registry, version, precision=self._precision)
        return ServedModel(version=version, classifier=classifier)

    def warm(self, loaded: ServedModel) -> None:
        loaded.classifier.predict_proba([WARM_UP_TEXT])


class NewestWatcher(ModelWatcher):
    """The newest classifier the trainer made, promoted or not: what the scorer's selection
    ranks with, so that a version the gate has not promoted yet (its test set still small)
    already chooses the next labels."""

    what = "newest model"
    verb = "selecting with"

    def warm(self, loaded: ServedModel) -> None:
        """Nothing to build: selection ranks with this version's head on the embeddings the
        scorer already has (:class:`loop.selection.windows.NewestModel`), so a fast copy of
        its encoder would only take memory (about 80 MB in int8)."""

    def wanted(self) -> str | None:
        return self._registry.latest()


class ReloadCheck:
    """When a worker looks at the registry's pointer again: every ``interval_s`` seconds, and
    at once after :meth:`wake` (a model event said a version was promoted or rolled back).
    Thread-safe: another thread wakes it, the worker asks :meth:`due` between batches."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._last = clock()
        self._woken = threading.Event()

    def wake(self) -> None:
        self._woken.set()

    def due(self) -> bool:
        """Whether to check now; if so, the next check is an interval (or a wake) away."""
        if not self._woken.is_set() and self._clock() - self._last < self.interval_s:
            return False
        self._woken.clear()  # before the check: a wake during it calls for another
        self._last = self._clock()
        return True
