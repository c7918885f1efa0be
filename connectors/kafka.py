"""A thin typed layer over kafka-python: topics, producing, consuming in batches, dead letters.

At-least-once: a batch's outputs (results and dead letters) are produced and acknowledged by
the broker before its offsets are committed. A crash in between replays the batch; workers
make that harmless by writing the same bytes under the same key again.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from types import FrameType
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import CommitFailedError, KafkaError, TopicAlreadyExistsError
from kafka.structs import OffsetAndMetadata, TopicPartition

from connectors.outputs import Output, encode_key, fit_outputs, where
from connectors.retry import Backoff, Interrupted, backoff_of, retry_outages
from loop.messages import Message
from loop.settings import KafkaSettings, Settings

logger = logging.getLogger(__name__)


def ensure_topics(servers: str, names: Iterable[str], partitions: int) -> None:
    """Create missing topics (and their dead-letter topics are separate names)."""
    admin = KafkaAdminClient(bootstrap_servers=servers, client_id="alloop-admin")
    try:
        existing = set(admin.list_topics())
        missing = [n for n in dict.fromkeys(names) if n not in existing]
        if missing:
            try:
                admin.create_topics(
                    [NewTopic(name, partitions, 1) for name in missing], timeout_ms=15_000
                )
                logger.info("created topics %s", ", ".join(missing))
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


def start_worker(
    settings: Settings, servers: str, topics: Iterable[str]
) -> tuple[StopFlag, Backoff]:
    """What a worker process does first: a stop flag that SIGTERM and SIGINT set, the backoff
    ``ALLOOP_RETRY__*`` configures, and ``topics`` made if missing, waiting out a broker that
    cannot be reached yet."""
    stop = StopFlag().install()
    backoff = backoff_of(settings)
    ensure_topics_waiting(servers, topics, settings.kafka.topics.partitions, stop, backoff)
    return stop, backoff


def ensure_topics_waiting(
    servers: str, names: Iterable[str], partitions: int, stop: StopFlag, backoff: Backoff
) -> None:
    """:func:`ensure_topics`, waiting out a broker that is not reachable yet (a worker's
    start)."""
    wanted = list(names)
    retry_outages(
        lambda: ensure_topics(servers, wanted, partitions), stop, backoff, "creating topics"
    )


def make_producer(servers: str, kafka: KafkaSettings, **overrides: Any) -> KafkaProducer:
    options: dict[str, Any] = {
        "bootstrap_servers": servers,
        "client_id": kafka.client_id,
        "acks": "all",
        "linger_ms": 5,
        "retries": 5,
        "max_in_flight_requests_per_connection": 1,
        "request_timeout_ms": kafka.request_timeout_ms,
        "max_request_size": kafka.max_request_size,
    }
    options.update(overrides)
    return KafkaProducer(**options)


def worker_clients(
    settings: Settings, servers: str, topic: str, group_id: str
) -> tuple[KafkaConsumer, KafkaProducer]:
    """A worker's consumer of ``topic`` in ``group_id`` and its producer, both configured by
    ``ALLOOP_KAFKA__*``."""
    return (
        make_consumer(servers, settings.kafka, [topic], group_id),
        make_producer(servers, settings.kafka),
    )


def make_consumer(
    servers: str, kafka: KafkaSettings, topics: Sequence[str], group_id: str, **overrides: Any
) -> KafkaConsumer:
    options: dict[str, Any] = {
        "bootstrap_servers": servers,
        "client_id": kafka.client_id,
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": kafka.session_timeout_ms,
        "heartbeat_interval_ms": kafka.heartbeat_interval_ms,
        "request_timeout_ms": max(kafka.request_timeout_ms, kafka.session_timeout_ms + 5_000),
        "max_poll_interval_ms": 600_000,
    }
    options.update(overrides)
    consumer = KafkaConsumer(**options)
    consumer.subscribe(list(topics), listener=_LogAssignments(group_id))
    return consumer


class _LogAssignments(ConsumerRebalanceListener):  # type: ignore[misc]
    """Log partition moves: operators (and tests) see when a worker joined its group."""

    def __init__(self, group_id: str) -> None:
        self.group_id = group_id

    def on_partitions_revoked(self, revoked: Any) -> None:
        if revoked:
            logger.info("group %s revoked partitions: %s", self.group_id, _names(revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        logger.info("group %s assigned partitions: %s", self.group_id, _names(assigned))


def _names(partitions: Any) -> str:
    return ", ".join(sorted(f"{tp.topic}/{tp.partition}" for tp in partitions)) or "none"


def send_all(producer: KafkaProducer, outputs: Sequence[Output], timeout_s: float = 60) -> None:
    """Produce ``outputs`` and wait until the broker acknowledged every one; raise if not."""
    futures = [
        producer.send(out.topic, key=encode_key(out.key), value=out.value, headers=out.headers)
        for out in outputs
    ]
    producer.flush(timeout=timeout_s)
    for future in futures:
        future.get(timeout=timeout_s)


class StopFlag:
    """Set by SIGTERM/SIGINT (or by hand); the loop finishes its batch and stops."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def __bool__(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        return self._event.wait(seconds)

    def install(self) -> StopFlag:
        def handler(signum: int, frame: FrameType | None) -> None:
            logger.info("received signal %d: finishing the current batch, then stopping", signum)
            self.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
        return self


Handler = Callable[[list[Any]], list[Output]]

HELD = "outputs acknowledged, ALLOOP_KAFKA__COMMIT_DELAY_S holds the commit for"
"""What the log says when a batch's outputs are out and its commit is held (fault injection:
``alloop bench chaos`` kills a scorer in that gap to make a replay)."""


@dataclass
class LoopStats:
    batches: int = 0
    records: int = 0
    outputs: int = 0
    dead: int = 0


def poll_batch(consumer: KafkaConsumer, size: int, max_wait_ms: int) -> list[Any]:
    """Up to ``size`` records, waiting at most ``max_wait_ms`` for the batch to fill."""
    deadline = time.monotonic() + max_wait_ms / 1000
    records: list[Any] = []
    while len(records) < size:
        left_ms = int((deadline - time.monotonic()) * 1000)
        if left_ms <= 0 and records:
            break
        polled = consumer.poll(timeout_ms=max(left_ms, 0), max_records=size - len(records))
        for batch in polled.values():
            records.extend(batch)
        if left_ms <= 0:
            break
    return records


def commit(consumer: KafkaConsumer, records: Sequence[Any]) -> None:
    """Commit the offset after the last record of each partition in ``records``."""
    last: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        last[tp] = max(last.get(tp, -1), record.offset)
    offsets = {tp: OffsetAndMetadata(offset + 1, "", -1) for tp, offset in last.items()}
    try:
        consumer.commit(offsets)
    except CommitFailedError as exc:
        # The group rebalanced while we worked: the partitions' new owner replays the batch.
        logger.warning("commit failed after a rebalance; the batch will be replayed: %s", exc)


def run_loop(
    consumer: KafkaConsumer,
    producer: KafkaProducer,
    handle: Handler,
    stop: StopFlag,
    *,
    batch_size: int,
    max_wait_ms: int,
    between_batches: Callable[[], None] | None = None,
    stats: LoopStats | None = None,
    worker: str = "alloop",
    backoff: Backoff | None = None,
    commit_delay_s: float = 0.0,
) -> LoopStats:
    """Consume in batches until ``stop``: handle, produce and await the outputs, commit.
    An output too large to produce dead-letters its source record (:func:`fit_outputs`).
    ``commit_delay_s`` (``ALLOOP_KAFKA__COMMIT_DELAY_S``, for fault injection only) holds
    each commit that long after the outputs were acknowledged, saying so in the log
    (:data:`HELD`): a kill in that gap makes the batch be replayed.

    A broker or Argilla outage in any step makes the loop wait and retry that step with
    ``backoff`` (:mod:`connectors.retry`), nothing committed meanwhile: a poll that failed (no
    group coordinator while the broker is down) is tried again, a handle that failed is
    run again on the same records, outputs that could not be sent are sent again, a commit is
    tried again. A stop signal while waiting ends the loop without committing the batch."""
    stats = stats or LoopStats()
    backoff = backoff or Backoff()
    max_bytes = int(producer.config["max_request_size"])
    try:
        while not stop:
            if between_batches is not None:
                retry_outages(between_batches, stop, backoff, "between batches")
            records = retry_outages(
                partial(poll_batch, consumer, batch_size, max_wait_ms), stop, backoff, "polling"
            )
            if not records:
                continue
            span = f"{where(records[0])} (+{len(records) - 1})"
            outputs = retry_outages(
                partial(_handled, handle, records, max_bytes, worker),
                stop,
                backoff,
                f"handling {span}",
            )
            retry_outages(partial(send_all, producer, outputs), stop, backoff, f"producing {span}")
            if commit_delay_s > 0:
                logger.warning("%s: %s %.1f s (a debug setting)", span, HELD, commit_delay_s)
                stop.wait(commit_delay_s)
            retry_outages(partial(commit, consumer, records), stop, backoff, f"committing {span}")
            stats.batches += 1
            stats.records += len(records)
            stats.outputs += len(outputs)
            stats.dead += sum(out.topic.endswith(".dlq") for out in outputs)
    except Interrupted as exc:
        logger.info(
            "stopped while waiting for an outage to end (%s): the batch will be replayed", exc
        )
    return stats


def _handled(handle: Handler, records: list[Any], max_bytes: int, worker: str) -> list[Output]:
    return fit_outputs(handle(records), max_bytes, worker)


def serve(
    consumer: KafkaConsumer,
    producer: KafkaProducer,
    handle: Handler,
    stop: StopFlag,
    **options: Any,
) -> LoopStats:
    """A worker's life: :func:`run_loop` (``options`` are its own) until ``stop``, then the
    consumer and the producer closed, whatever ended the loop."""
    try:
        return run_loop(consumer, producer, handle, stop, **options)
    finally:
        consumer.close()
        producer.close(timeout=10)


def describe_error(exc: BaseException) -> str:
    """One readable line for a Kafka failure."""
    if isinstance(exc, KafkaError):
        return f"Kafka error: {type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}: {exc}"


def announce(
    locate: Callable[[], str],
    settings: Settings,
    events: Sequence[Message],
    timeout_s: float = 10.0,
) -> bool:
    """Publish model events to ``kafka.topics.models``, best effort: a promotion made by hand
    (CLI or API) is announced like a trainer's, but it has already happened, so a broker
    that cannot be found (``locate`` raises) or reached only costs the announcement (logged),
    never the promotion."""
    if not events:
        return True
    topic = settings.kafka.topics.models
    try:
        servers = locate()
        ensure_topics(servers, [topic], settings.kafka.topics.partitions)
        producer = make_producer(
            servers, settings.kafka, request_timeout_ms=int(timeout_s * 1000), retries=1
        )
        try:
            send_all(producer, [Output.of(topic, event) for event in events])
        finally:
            producer.close(timeout=timeout_s)
    except Exception as exc:  # any broker trouble: the promotion stands, say what was lost
        logger.warning("could not announce %d model event(s) on %s: %s", len(events), topic, exc)
        return False
    return True
