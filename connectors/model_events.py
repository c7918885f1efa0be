"""Listening to the ``models`` topic: a promotion or rollback wakes the scorer and the API at
once instead of at their next registry poll.

An event is a hint, never the truth: what it wakes does the same cheap registry read as its
poll, and the pointer decides what serves. So an event that is late, lost, replayed or out of
order changes nothing but when the check happens, and the poll stays as the fallback.

The listener is a thread with a consumer of its own (kafka-python's consumer is not
thread-safe). It joins no consumer group: it is assigned every partition of the topic and
reads from the start, because the local broker's end offsets are wrong (``seek_to_end``
points into the last batch) and joining a group costs seconds. Old events read at start-up
only cause one check, as the start-up itself does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from connectors.kafka import ensure_topics
from connectors.retry import Backoff, describe
from loop.errors import MessageError
from loop.messages import ModelEvent, decode
from loop.settings import Settings

logger = logging.getLogger(__name__)

RELOADING = frozenset({"registered", "promoted", "rolled_back"})
"""The event kinds that may change what serves (``registered``: the newest version, which the
scorer ranks its selection with). Other kinds, and other schemas on the topic, are ignored."""


def reloading(values: Iterable[bytes | None]) -> list[ModelEvent]:
    """The events among raw message values that call for a registry check."""
    wanted = []
    for value in values:
        try:
            event = decode(value, ModelEvent)
        except MessageError as exc:  # another kind of message, or a newer one: not ours
            logger.debug("models topic: ignoring a message (%s)", exc)
            continue
        if event.event in RELOADING:
            wanted.append(event)
    return wanted


ConsumerFactory = Callable[[str], Any]


class ModelEventListener:
    """Calls ``on_events`` (in its own thread) with each polled batch of model events that
    call for a registry check. ``locate`` gives the broker address; a broker that cannot be
    found or reached is tried again with ``backoff``, logged once, never fatal."""

    def __init__(
        self,
        locate: Callable[[], str],
        settings: Settings,
        on_events: Callable[[list[ModelEvent]], object],
        *,
        backoff: Backoff | None = None,
        poll_ms: int = 500,
    ) -> None:
        self._locate = locate
        self._settings = settings
        self._on_events = on_events
        self._backoff = backoff or Backoff(initial_s=1.0, max_s=30.0)
        self._poll_ms = poll_ms
        self._stop = threading.Event()
        self.listening = threading.Event()
        """Set once the consumer is assigned the topic's partitions."""
        self._thread = threading.Thread(target=self._run, name="alloop-model-events", daemon=True)

    @property
    def topic(self) -> str:
        return self._settings.kafka.topics.models

    def start(self) -> ModelEventListener:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            consumer = None
            try:
                consumer = self._connect()
                failures = 0
                self._listen(consumer)
            except Exception as exc:  # the poll of the registry goes on meanwhile
                failures += 1
                delay = self._backoff.delay(failures)
                log = logger.warning if failures == 1 else logger.debug
                log(
                    "not listening to %s (%s): reloads wait for the registry poll; retry in %.0fs",
                    self.topic,
                    describe(exc),
                    delay,
                )
                self._stop.wait(delay)
            finally:
                self.listening.clear()
                if consumer is not None:
                    consumer.close()

    def _connect(self) -> KafkaConsumer:
        kafka = self._settings.kafka
        servers = self._locate()
        ensure_topics(servers, [self.topic], kafka.topics.partitions)
        consumer = KafkaConsumer(
            bootstrap_servers=servers,
            client_id=f"{kafka.client_id}-model-events",
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            request_timeout_ms=kafka.request_timeout_ms,
        )
        try:
            partitions = consumer.partitions_for_topic(self.topic)
            if not partitions:
                raise RuntimeError(f"no partitions known for {self.topic} yet")
            consumer.assign([TopicPartition(self.topic, p) for p in sorted(partitions)])
            consumer.seek_to_beginning()
        except Exception:
            consumer.close()
            raise
        return consumer

    def _listen(self, consumer: KafkaConsumer) -> None:
        self.listening.set()
        logger.info("listening to %s for promotions and rollbacks", self.topic)
        while not self._stop.is_set():
            polled = consumer.poll(timeout_ms=self._poll_ms)
            values = [record.value for batch in polled.values() for record in batch]
            events = reloading(values)
            if events:
                self._on_events(events)
