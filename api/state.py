"""What one app holds while it runs; stored on ``app.state.alloop``."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from api.auth import KeyChecker
from api.labels_out import KafkaLabelSink, LabelSink
from api.metrics import ApiMetrics
from api.webhooks import TOLERANCE_S
from loop.classification.serving import ModelWatcher
from loop.drift.report import DriftReport
from loop.drift.store import DriftStore
from loop.entities.serving import EntityTagger
from loop.errors import AlloopError
from loop.label_db import DeliveryLog
from loop.labels import LabelStore
from loop.registry import ModelRegistry
from loop.settings import Settings

logger = logging.getLogger(__name__)


@dataclass
class AppState:
    """The settings, the registry, the watcher that holds the served model, metrics, keys."""

    settings: Settings
    registry: ModelRegistry
    watcher: ModelWatcher
    metrics: ApiMetrics
    keys: KeyChecker
    sink: LabelSink | None = field(default=None)
    entities: EntityTagger | None = field(default=None)
    deliveries: DeliveryLog | None = field(default=None)
    labels: LabelStore | None = field(default=None)
    drift: DriftStore | None = field(default=None)

    def labels_sink(self) -> LabelSink:
        """Where webhook label events go: the labels topic unless a test set another sink."""
        if self.sink is None:
            self.sink = KafkaLabelSink(self.settings)
        return self.sink

    def delivery_log(self) -> DeliveryLog:
        """The webhook deliveries processed, in the label database (opened on first use)."""
        if self.deliveries is None:
            self.deliveries = DeliveryLog(self.settings.labels_path, TOLERANCE_S)
        return self.deliveries

    def label_store(self) -> LabelStore:
        """The label store, read by ``/v1/queue`` (opened on first use, then kept open)."""
        if self.labels is None:
            argilla = self.settings.argilla
            self.labels = LabelStore(
                self.settings.labels_path, argilla.min_submitted, argilla.min_agreement
            )
        return self.labels

    def close(self) -> None:
        """Close what the app opened: the label sink and the label database."""
        if isinstance(self.sink, KafkaLabelSink):
            self.sink.close()
        for opened in (self.deliveries, self.labels, self.drift):
            if opened is not None:
                opened.close()
        self.deliveries = self.labels = self.drift = None

    def drift_reports(self, last: int) -> list[DriftReport]:
        """The scorer's newest drift reports (none before its store exists)."""
        if self.drift is None:
            if not self.settings.drift_path.exists():
                return []
            self.drift = DriftStore(self.settings.drift_path)
        return self.drift.history(last=last)

    def observe_drift(self) -> None:
        """Set the drift gauges from the newest report."""
        found = self.drift_reports(1)
        if found:
            self.metrics.set_drift(found[-1])

    def refresh(self) -> bool:
        """Load the promoted version if it changed (blocking: call from a thread)."""
        if self.entities is not None and self.entities.watcher is not None:
            self.entities.watcher.refresh()
        changed = self.watcher.refresh()
        if changed:
            self.metrics.reloads.inc()
            self._observe_latency()
        self.metrics.set_served(self.watcher.version)
        from loop.training.status import TrainerStatus

        status = TrainerStatus.load(self.settings.home)
        if status is not None:
            self.metrics.retrain_seconds.set(status.duration_s)
        return changed

    def _observe_latency(self) -> None:
        """Label-to-served latency: newest label of the version now served, until now."""
        version = self.watcher.version
        if version is None:
            return
        try:
            stamp = self.registry.card(version).counts.get("newest_label_at")
        except AlloopError:
            return
        if stamp:
            latency = (datetime.now(UTC) - datetime.fromisoformat(stamp)).total_seconds()
            self.metrics.label_to_served.observe(max(0.0, latency))
            logger.info("serving %s, %.1f s after its newest label", version, latency)
