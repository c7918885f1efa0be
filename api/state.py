"""What one app holds while it runs; stored on ``app.state.alloop``."""

from __future__ import annotations

from dataclasses import dataclass

from api.auth import KeyChecker
from api.metrics import ApiMetrics
from loop.registry import ModelRegistry
from loop.serving import ModelWatcher
from loop.settings import Settings


@dataclass
class AppState:
    """The settings, the registry, the watcher that holds the served model, metrics, keys."""

    settings: Settings
    registry: ModelRegistry
    watcher: ModelWatcher
    metrics: ApiMetrics
    keys: KeyChecker

    def refresh(self) -> bool:
        """Load the promoted version if it changed (blocking: call from a thread)."""
        changed = self.watcher.refresh()
        if changed:
            self.metrics.reloads.inc()
        self.metrics.set_served(self.watcher.version)
        return changed
