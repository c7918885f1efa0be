"""Stand-ins for what the workers read from Kafka and write to Argilla, for in-process tests of
their batch handlers: a consumed record, and a queue that keeps records by document id."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from loop.selection.budget import Pending


class Record(NamedTuple):
    """What a batch handler reads of a consumed Kafka record (kafka-python's fields)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


def record(
    offset: int,
    value: bytes | None,
    key: str | None = "k",
    topic: str = "docs.raw",
    headers: list[tuple[str, bytes]] | None = None,
) -> Record:
    """A record of partition 0 at ``offset``."""
    return Record(topic, 0, offset, key.encode() if key is not None else None, value, headers or [])


@dataclass
class MemoryQueue:
    """Stands in for the labeler's Argilla queue: records by document id, with the score in
    their metadata; ``started`` holds the ids a person has begun to answer."""

    stored: dict[str, Any] = field(default_factory=dict)
    started: set[str] = field(default_factory=set)

    def pending(self, task: str) -> list[tuple[Pending, Any]]:
        return [
            (Pending(rid, float(r.metadata["score"]), rid in self.started), f"server-{rid}")
            for rid, r in self.stored.items()
        ]

    def remove(self, task: str, server_ids: list[Any]) -> None:
        for server_id in server_ids:
            del self.stored[server_id.removeprefix("server-")]

    def write(self, task: str, records: list[Any]) -> None:
        for item in records:
            self.stored[str(item.id)] = item
