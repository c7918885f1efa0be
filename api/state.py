"""What one app holds while it runs; stored on ``app.state.alloop``."""

from __future__ import annotations

from dataclasses import dataclass, field

from api.auth import KeyChecker
from api.labels_out import KafkaLabelSink, LabelSink
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
    sink: LabelSink | None = field(default=None)

    def labels_sink(self) -> LabelSink:
        """Where webhook label events go: the labels topic unless a test set another sink."""
        if self.sink is None:
            self.sink = KafkaLabelSink(self.settings)
        return self.sink

    def refresh(self) -> bool:
        """Load the promoted version if it changed (blocking: call from a thread)."""
        changed = self.watcher.refresh()
        if changed:
            self.metrics.reloads.inc()
        self.metrics.set_served(self.watcher.version)
        return changed
