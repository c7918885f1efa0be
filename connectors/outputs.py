"""What a worker's batch handler returns: outputs for the producer, dead letters with their
reason, each consumed message decoded beside its own record, and outputs fitted under the
producer's size limit."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from kafka.record.default_records import DefaultRecordBatchBuilder

from loop.errors import MessageError
from loop.messages import M, Message, decode, encode
from loop.settings import Topics

logger = logging.getLogger(__name__)


ERROR_HEADER = "alloop.error"
Headers = list[tuple[str, bytes]]


@dataclass(frozen=True)
class Output:
    """One message to produce; ``source`` is the consumed record it was made from, if any
    (what goes to the dead-letter topic when the output cannot be produced)."""

    topic: str
    key: str | None
    value: bytes
    headers: Headers = field(default_factory=list)
    source: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def of(
        cls, topic: str, message: Message, headers: Headers | None = None, source: Any = None
    ) -> Output:
        return cls(topic, message.key, encode(message), headers or [], source)

    def size(self) -> int:
        """Its size in a produce request, as the producer checks it against
        ``max_request_size`` (record format v2)."""
        return self._size

    @cached_property
    def _size(self) -> int:
        # Worked out once: the scorer and the loop both fit a batch's outputs (kafka-python
        # adds up the record's varints in Python, about 5 µs an output).
        return int(
            DefaultRecordBatchBuilder.estimate_size_in_bytes(
                encode_key(self.key), self.value, self.headers
            )
        )


def dead_letter(record: Any, reason: str, worker: str) -> Output:
    """The dead-letter copy of a consumed record: same key, value and headers, plus why."""
    headers: Headers = [(k, v) for k, v in (record.headers or []) if not k.startswith("alloop.")]
    headers += [
        (ERROR_HEADER, reason.encode("utf-8", "replace")[:4000]),
        ("alloop.source", where(record).encode()),
        ("alloop.worker", worker.encode()),
    ]
    key = record.key.decode("utf-8", "replace") if record.key is not None else None
    return Output(Topics.dlq(record.topic), key, record.value or b"", headers)


def where(record: Any) -> str:
    """``topic/partition/offset`` of a consumed record, for logs."""
    return f"{record.topic}/{record.partition}/{record.offset}"


def decode_all(
    records: Sequence[Any], model: type[M], worker: str
) -> tuple[list[tuple[Any, M]], list[Output]]:
    """Decode every record as ``model``: each message with its own record (what goes to the
    dead-letter topic if processing it fails later), and a dead letter with the reason for
    every record that does not decode (logged with its topic, partition and offset)."""
    decoded: list[tuple[Any, M]] = []
    dead: list[Output] = []
    for record in records:
        try:
            decoded.append((record, decode(record.value, model)))
        except MessageError as exc:
            logger.warning("dead letter %s: %s", where(record), exc)
            dead.append(dead_letter(record, str(exc), worker))
    return decoded, dead


def fit_outputs(outputs: Sequence[Output], max_bytes: int, worker: str) -> list[Output]:
    """The outputs the producer accepts (``max_bytes``: its ``max_request_size``).

    An output too large to produce would make ``send()`` raise on every replay of its batch.
    Instead its source record goes to the dead-letter topic, alone, with the reason, and
    every other output made from that record is dropped; the rest of the batch goes on. A
    dead letter that is itself too large keeps its key and headers but not its value (the
    header ``alloop.value-bytes`` says how long it was); an oversized output with no source
    is dropped and logged."""
    sizes = [out.size() for out in outputs]
    refused: dict[str, tuple[Any, str]] = {}
    for out, size in zip(outputs, sizes, strict=True):
        if size > max_bytes and out.source is not None:
            reason = (
                f"the {out.topic} message made from it is {size} bytes, more than the "
                f"producer's max request size of {max_bytes} bytes (ALLOOP_KAFKA__MAX_REQUEST_SIZE)"
            )
            refused.setdefault(where(out.source), (out.source, reason))
    fitted: list[Output] = []
    for out, size in zip(outputs, sizes, strict=True):
        if out.source is not None and where(out.source) in refused:
            continue
        if size <= max_bytes:
            fitted.append(out)
        elif out.topic.endswith(".dlq"):
            fitted.append(_without_value(out))
        else:
            logger.error(
                "dropped a %d-byte message for %s (key %s): larger than the max request size",
                size,
                out.topic,
                out.key,
            )
    for record, reason in refused.values():
        logger.warning("dead letter %s: %s", where(record), reason)
        dead = dead_letter(record, reason, worker)
        fitted.append(dead if dead.size() <= max_bytes else _without_value(dead))
    return fitted


def _without_value(dead: Output) -> Output:
    """A dead letter too large to produce: its key and headers, and the length of its value."""
    headers = [*dead.headers, ("alloop.value-bytes", str(len(dead.value)).encode())]
    return Output(dead.topic, dead.key, b"", headers)


def header(record: Any, name: str) -> str | None:
    """A header's value as text, if the record has it."""
    for key, value in record.headers or []:
        if key == name:
            return bytes(value).decode("utf-8", "replace")
    return None


def encode_key(key: str | None) -> bytes | None:
    return key.encode("utf-8") if key is not None else None
