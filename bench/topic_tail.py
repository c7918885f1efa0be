"""Reading a topic from its start in a thread, as ``alloop bench chaos`` watches the loop's
topics: every record's value by document id, each record once across rebalances. Both the
run (:mod:`bench.chaos`) and its checks (:mod:`bench.chaos_checks`) use it."""

from __future__ import annotations

import json
import threading
import uuid
from collections import defaultdict
from typing import Any


class Tail:
    """Reads a topic from its start in a thread: every record's value, by document id."""

    def __init__(self, broker: str, topic: str) -> None:
        self.broker, self.topic = broker, topic
        self.values: dict[str, list[bytes]] = defaultdict(list)
        self.seen: set[tuple[int, int]] = set()
        """Records read, by partition and offset: a rebalance (after a broker restart) makes
        the reader start over, and what it reads again is not a new copy."""
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True, name=f"tail-{topic}")
        self._thread.start()

    def _read(self) -> None:
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(
            self.topic,
            bootstrap_servers=self.broker,
            group_id=f"chaos-tail-{uuid.uuid4().hex}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
        )
        try:
            while not self._stop.is_set():
                for batch in consumer.poll(timeout_ms=500).values():
                    with self.lock:
                        for record in batch:
                            if (record.partition, record.offset) in self.seen:
                                continue
                            self.seen.add((record.partition, record.offset))
                            self.values[_id_of(record)].append(bytes(record.value or b""))
        finally:
            consumer.close()

    def snapshot(self) -> dict[str, list[bytes]]:
        with self.lock:
            return {key: list(values) for key, values in self.values.items()}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _id_of(record: Any) -> str:
    """The document id of a message: its ``id`` field, else its key (a dead letter's value is
    the bytes it could not read)."""
    try:
        value = json.loads(record.value)
        if isinstance(value, dict) and isinstance(value.get("id"), str):
            return value["id"]
    except (ValueError, TypeError):
        pass
    return (record.key or b"").decode("utf-8", "replace")
