"""Topics in memory, for in-process tests of what the workers do with Kafka.

:class:`MemoryBus` holds records per topic (one partition each) and the offsets each consumer
group committed. A test puts messages on a topic (:meth:`MemoryBus.publish`), runs a worker's
batch handler over them (:meth:`MemoryBus.pump`: read a batch, handle it, deliver its outputs,
commit, as the real loop does) and reads what came out (:meth:`MemoryBus.messages`). For the
batch loop itself, :meth:`MemoryBus.consumer` and :meth:`MemoryBus.producer` stand in for
kafka-python's clients (the few methods the loop calls), and :meth:`MemoryBus.fail_sends`
makes the broker unreachable for a number of sends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from loop.messages import M, Message, decode, encode
from loop.testing.records import Record

Headers = list[tuple[str, bytes]]


class Outgoing(Protocol):
    """What a batch handler returns for each message to produce (``connectors.outputs.Output``)."""

    @property
    def topic(self) -> str: ...
    @property
    def key(self) -> str | None: ...
    @property
    def value(self) -> bytes: ...
    @property
    def headers(self) -> Headers: ...


BatchHandler = Callable[[list[Any]], Sequence[Outgoing]]


def _key_bytes(key: str | bytes | None) -> bytes | None:
    return key.encode("utf-8") if isinstance(key, str) else key


@dataclass
class MemoryBus:
    """Topics of one partition each, and each group's committed offsets."""

    topics: dict[str, list[Record]] = field(default_factory=dict)
    committed: dict[tuple[str, str], int] = field(default_factory=dict)
    max_request_size: int = 1_048_576
    _failing: list[Callable[[], Exception]] = field(default_factory=list)

    def send(
        self,
        topic: str,
        value: bytes | None,
        key: str | bytes | None = None,
        headers: Headers | None = None,
    ) -> Record:
        """Append one record to ``topic`` (created on first use) at the next offset."""
        log = self.topics.setdefault(topic, [])
        record = Record(topic, 0, len(log), _key_bytes(key), value, list(headers or []))
        log.append(record)
        return record

    def publish(self, topic: str, *messages: Message) -> list[Record]:
        """Put ``messages`` on ``topic``, encoded and keyed as producers do."""
        return [self.send(topic, encode(m), m.key) for m in messages]

    def deliver(self, outputs: Iterable[Outgoing]) -> list[Record]:
        """Append a handler's outputs to their topics."""
        return [self.send(o.topic, o.value, o.key, o.headers) for o in outputs]

    def records(self, topic: str) -> list[Record]:
        return list(self.topics.get(topic, []))

    def messages(self, topic: str, model: type[M]) -> list[M]:
        """Every message on ``topic``, decoded as ``model``."""
        return [decode(r.value, model) for r in self.records(topic)]

    def position(self, group: str, topic: str) -> int:
        """The next offset ``group`` reads on ``topic`` (0 before any commit)."""
        return self.committed.get((group, topic), 0)

    def poll(self, group: str, topic: str, max_records: int) -> list[Record]:
        """Up to ``max_records`` records after ``group``'s committed offset (nothing committed)."""
        start = self.position(group, topic)
        return self.records(topic)[start : start + max_records]

    def commit(self, group: str, records: Iterable[Record]) -> None:
        """Commit the offset after the last of ``records`` on each of their topics."""
        for record in records:
            at = (group, record.topic)
            self.committed[at] = max(self.committed.get(at, 0), record.offset + 1)

    def pump(
        self, topic: str, handle: BatchHandler, group: str = "test", batch_size: int = 64
    ) -> int:
        """One batch through ``handle`` as the worker loop runs it: poll, handle, deliver the
        outputs, then commit. Returns how many records it handled (0: none waiting)."""
        records = self.poll(group, topic, batch_size)
        if records:
            self.deliver(handle(records))
            self.commit(group, records)
        return len(records)

    def drain(
        self, topic: str, handle: BatchHandler, group: str = "test", batch_size: int = 64
    ) -> int:
        """:meth:`pump` until ``topic`` has nothing left for ``group``; how many records."""
        total = 0
        while handled := self.pump(topic, handle, group, batch_size):
            total += handled
        return total

    def fail_sends(self, count: int, error: Callable[[], Exception]) -> None:
        """The next ``count`` sends of :meth:`producer` fail (their ``get()`` raises
        ``error()``) and store nothing: an unreachable broker."""
        self._failing.extend([error] * count)

    def consumer(
        self, group: str, topics: Sequence[str], on_empty: Callable[[], object] | None = None
    ) -> MemoryConsumer:
        return MemoryConsumer(self, group, list(topics), on_empty)

    def producer(self) -> MemoryProducer:
        return MemoryProducer(self)


@dataclass
class MemoryConsumer:
    """kafka-python's ``KafkaConsumer`` as the batch loop uses it: ``poll`` from the group's
    position, ``commit`` of explicit offsets. ``on_empty`` runs when a poll finds nothing (a
    test stops its loop there)."""

    bus: MemoryBus
    group: str
    topics: list[str]
    on_empty: Callable[[], object] | None = None
    commits: list[dict[Any, Any]] = field(default_factory=list)
    _read: dict[str, int] = field(default_factory=dict)

    def poll(self, timeout_ms: int = 0, max_records: int = 500) -> dict[str, list[Record]]:
        found: dict[str, list[Record]] = {}
        left = max_records
        for topic in self.topics:
            start = self._read.get(topic, self.bus.position(self.group, topic))
            batch = self.bus.records(topic)[start : start + left]
            if batch:
                found[topic] = batch
                self._read[topic] = start + len(batch)
                left -= len(batch)
        if not found and self.on_empty is not None:
            self.on_empty()
        return found

    def commit(self, offsets: dict[Any, Any]) -> None:
        """``offsets``: partition (with ``.topic``) to offset-and-metadata (with ``.offset``)."""
        self.commits.append(dict(offsets))
        for partition, meta in offsets.items():
            at = (self.group, partition.topic)
            self.bus.committed[at] = max(self.bus.committed.get(at, 0), meta.offset)

    def close(self) -> None:
        pass


class _Sent:
    def __init__(self, record: Record | None, error: Exception | None) -> None:
        self.record, self.error = record, error

    def get(self, timeout: float | None = None) -> Record | None:
        if self.error is not None:
            raise self.error
        return self.record


@dataclass
class MemoryProducer:
    """kafka-python's ``KafkaProducer`` as the workers use it: ``send`` returns a future
    whose ``get()`` says whether the broker took the record."""

    bus: MemoryBus

    @property
    def config(self) -> dict[str, Any]:
        return {"max_request_size": self.bus.max_request_size}

    def send(
        self,
        topic: str,
        key: bytes | str | None = None,
        value: bytes | None = None,
        headers: Headers | None = None,
    ) -> _Sent:
        if self.bus._failing:
            return _Sent(None, self.bus._failing.pop(0)())
        return _Sent(self.bus.send(topic, value, key, headers), None)

    def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        pass
