"""Where the webhook receiver puts label events: the ``labels`` topic.

The producer is made on the first delivery, not at start-up, so that the API serves
classifications while the broker is down; a delivery that cannot be written answers 503 and
Argilla sends it again (it retries three times), and the poll catches up after that.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from loop.messages import LabelEvent
from loop.settings import Settings

logger = logging.getLogger(__name__)


class LabelSink(Protocol):
    """Writes label events somewhere durable; returns only once they are."""

    def publish(self, events: Sequence[LabelEvent]) -> None: ...


class KafkaLabelSink:
    """Label events to ``kafka.topics.labels``, acknowledged by the broker before returning."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._producer: Any = None
        self._lock = threading.Lock()

    def publish(self, events: Sequence[LabelEvent]) -> None:
        from connectors.kafka import ensure_topics, make_producer, send_all
        from connectors.outputs import Output
        from stack.discovery import bootstrap_servers

        topic = self._settings.kafka.topics.labels
        with self._lock:
            if self._producer is None:
                servers = bootstrap_servers(self._settings)
                ensure_topics(servers, [topic], self._settings.kafka.topics.partitions)
                self._producer = make_producer(servers, self._settings.kafka)
            producer = self._producer
        send_all(producer, [Output.of(topic, event) for event in events])
        logger.info("wrote %d label event(s) to %s", len(events), topic)

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close()
                self._producer = None
