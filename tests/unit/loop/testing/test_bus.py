"""The in-memory bus runs a batch handler as the worker loop does: at least once."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.outputs import Output
from loop.messages import Document, TaggedDocument, decode
from loop.testing.bus import MemoryBus


def tag(records: list[Any]) -> list[Output]:
    """Tags every document as scored by v0001."""
    docs = [decode(r.value, Document) for r in records]
    return [
        Output.of(
            "docs.tagged",
            TaggedDocument(id=d.id, text=d.text, status="scored", model_version="v0001"),
        )
        for d in docs
    ]


def documents(count: int) -> list[Document]:
    return [Document(id=f"d{i}", text=f"text {i}") for i in range(count)]


def test_pump_handles_a_batch_delivers_its_outputs_and_commits_it() -> None:
    bus = MemoryBus()
    bus.publish("docs.raw", *documents(5))
    assert bus.pump("docs.raw", tag, batch_size=2) == 2
    assert [t.id for t in bus.messages("docs.tagged", TaggedDocument)] == ["d0", "d1"]
    assert bus.position("test", "docs.raw") == 2
    assert bus.drain("docs.raw", tag, batch_size=2) == 3
    assert bus.pump("docs.raw", tag) == 0
    tagged = bus.records("docs.tagged")
    assert [r.key for r in tagged] == [f"d{i}".encode() for i in range(5)]
    assert [r.offset for r in tagged] == list(range(5))


def test_a_batch_whose_handler_failed_is_read_again() -> None:
    bus = MemoryBus()
    bus.publish("docs.raw", *documents(3))

    def broken(records: list[Any]) -> list[Output]:
        raise RuntimeError("the model fell over")

    with pytest.raises(RuntimeError):
        bus.pump("docs.raw", broken)
    assert bus.records("docs.tagged") == [] and bus.position("test", "docs.raw") == 0
    assert bus.drain("docs.raw", tag) == 3


def test_groups_read_on_their_own_and_failed_sends_store_nothing() -> None:
    bus = MemoryBus()
    bus.publish("docs.raw", *documents(2))
    assert bus.drain("docs.raw", tag, group="a") == 2
    assert bus.poll("b", "docs.raw", 10) == bus.records("docs.raw")

    bus.fail_sends(1, lambda: TimeoutError("broker down"))
    producer = bus.producer()
    with pytest.raises(TimeoutError):
        producer.send("docs.raw", key=b"x", value=b"lost").get(timeout=1)
    kept = producer.send("docs.raw", key=b"y", value=b"kept").get(timeout=1)
    assert kept is not None and kept.offset == 2
    assert [r.value for r in bus.records("docs.raw")][2:] == [b"kept"]


def test_a_consumer_continues_from_its_group_commit_and_reports_an_empty_poll() -> None:
    bus = MemoryBus()
    bus.publish("docs.raw", *documents(4))
    bus.commit("g", bus.records("docs.raw")[:3])
    empty: list[bool] = []
    consumer = bus.consumer("g", ["docs.raw"], on_empty=lambda: empty.append(True))
    assert [r.offset for r in consumer.poll(max_records=10)["docs.raw"]] == [3]
    assert consumer.poll() == {} and empty == [True]
