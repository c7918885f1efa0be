"""Outages make workers wait and retry with backoff; their own faults still raise."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from kafka.errors import KafkaConfigurationError, KafkaConnectionError, KafkaTimeoutError

from connectors.kafka import HELD, LoopStats, run_loop
from connectors.outputs import Output
from connectors.retry import Backoff, Interrupted, outage, retry_outages
from loop.testing.bus import MemoryBus, MemoryConsumer, MemoryProducer
from loop.testing.clock import ManualStop


def test_the_backoff_doubles_up_to_its_cap() -> None:
    backoff = Backoff(initial_s=0.5, max_s=4.0, factor=2.0)
    assert [backoff.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff.delay(10_000) == 4.0, "no overflow after a very long outage"


def argilla_error(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "http://argilla/api/v1/records")
    return httpx.HTTPStatusError("x", request=request, response=httpx.Response(status))


@pytest.mark.parametrize(
    ("exc", "service"),
    [
        (KafkaTimeoutError("no metadata after 60s"), "the broker"),
        (KafkaConnectionError("refused"), "the broker"),
        (httpx.ConnectError("refused"), "Argilla"),
        (httpx.ReadTimeout("slow"), "Argilla"),
        (argilla_error(503), "Argilla"),
        (argilla_error(429), "Argilla"),
        (ConnectionRefusedError(), "a service"),
        (KafkaConfigurationError("bad option"), None),
        (argilla_error(401), None),
        (argilla_error(422), None),
        (ValueError("a bug"), None),
    ],
)
def test_only_outages_are_retried(exc: BaseException, service: str | None) -> None:
    assert outage(exc) == service


def test_an_outage_is_waited_out_with_growing_waits_and_logged_one_line_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = iter([KafkaTimeoutError("down"), KafkaTimeoutError("down"), None])

    def action() -> str:
        failure = next(calls)
        if failure is not None:
            raise failure
        return "done"

    stop = ManualStop()
    with caplog.at_level(logging.INFO, logger="connectors.retry"):
        done = retry_outages(
            action, stop, Backoff(1.0, 10.0, 3.0), "sending a batch", clock=stop.clock
        )
    assert done == "done"
    assert stop.waits == [1.0, 3.0]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3 and all("\n" not in line for line in lines)
    assert lines[0].startswith("the broker unreachable while sending a batch (KafkaTimeoutError")
    assert "nothing committed" in lines[0]
    assert lines[-1].startswith("back after 4s and 2 failed tries: sending a batch done")


def test_a_fault_of_its_own_raises_at_once() -> None:
    stop = ManualStop()
    with pytest.raises(ValueError):
        retry_outages(lambda: (_ for _ in ()).throw(ValueError("bug")), stop, Backoff(), "x")
    assert stop.waits == []


def test_a_stop_signal_ends_the_wait() -> None:
    def down() -> None:
        raise httpx.ConnectError("refused")

    stop = ManualStop(after=3)
    with pytest.raises(Interrupted):
        retry_outages(down, stop, Backoff(), "writing records")
    assert len(stop.waits) == 3


def loop_over(bus: MemoryBus, stop: ManualStop) -> tuple[MemoryConsumer, MemoryProducer]:
    """A consumer of ``docs.raw`` and ``candidates`` that stops the loop once it finds nothing
    more, and a producer, on ``bus``."""
    return bus.consumer("workers", ["docs.raw", "candidates"], on_empty=stop.set), bus.producer()


def tag_first(records: list[Any]) -> list[Output]:
    """A worker's handle: one tagged output per batch, from its first record."""
    return [Output("docs.tagged", "a", b"t", source=records[0])]


def broker_timeout() -> Exception:
    return KafkaTimeoutError("Batch for TopicPartition expired")


def test_run_loop_waits_out_a_broker_outage_and_commits_only_after_the_outputs_went_out() -> None:
    stop, bus = ManualStop(), MemoryBus()
    for _ in range(7):
        bus.send("docs.raw", b"before", "z")
    bus.commit("workers", bus.records("docs.raw"))
    bus.send("docs.raw", b"x", "a")  # offset 7
    consumer, producer = loop_over(bus, stop)
    bus.fail_sends(3, broker_timeout)
    handled: list[int] = []

    def handle(records: list[Any]) -> list[Output]:
        handled.append(len(records))
        return [Output("docs.tagged", "a", b"tagged", source=records[0])]

    stats = run_loop(
        consumer,
        producer,
        handle,
        stop,
        batch_size=10,
        max_wait_ms=1,
        stats=LoopStats(),
        backoff=Backoff(0.5, 2.0, 2.0),
    )
    assert stop.waits[:3] == [0.5, 1.0, 2.0], "waited with backoff while the broker was down"
    assert handled == [1], "the batch is handled once; only sending is retried"
    assert [(r.topic, r.value) for r in bus.records("docs.tagged")] == [("docs.tagged", b"tagged")]
    assert len(consumer.commits) == 1 and stats.records == 1
    [offsets] = consumer.commits
    assert [o.offset for o in offsets.values()] == [8]


def test_run_loop_retries_a_handle_that_met_an_argilla_outage_and_commits_nothing_meanwhile() -> (
    None
):
    stop, bus = ManualStop(), MemoryBus()
    bus.send("candidates", b"x", "a")
    consumer, producer = loop_over(bus, stop)
    failures = [httpx.ConnectError("refused"), argilla_error(502)]

    def handle(records: list[Any]) -> list[Output]:
        if failures:
            assert consumer.commits == [], "nothing committed while Argilla is down"
            raise failures.pop(0)
        return []

    run_loop(consumer, producer, handle, stop, batch_size=10, max_wait_ms=1)
    assert failures == [] and len(consumer.commits) == 1


def test_run_loop_stopped_during_an_outage_commits_nothing() -> None:
    stop, bus = ManualStop(after=2), MemoryBus()
    bus.send("docs.raw", b"x", "a")
    consumer, producer = loop_over(bus, stop)
    bus.fail_sends(100, broker_timeout)
    run_loop(consumer, producer, tag_first, stop, batch_size=10, max_wait_ms=1)
    assert consumer.commits == []


def test_run_loop_still_raises_on_a_fault_of_the_worker() -> None:
    stop, bus = ManualStop(), MemoryBus()
    bus.send("docs.raw", b"x", "a")
    consumer, producer = loop_over(bus, stop)

    def broken(records: list[Any]) -> list[Output]:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        run_loop(consumer, producer, broken, stop, batch_size=10, max_wait_ms=1)
    assert consumer.commits == []


def test_a_commit_delay_holds_the_commit_after_the_outputs_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop, bus = ManualStop(), MemoryBus()
    bus.send("docs.raw", b"x", "a")
    consumer, producer = loop_over(bus, stop)
    seen_at_wait: list[tuple[int, int]] = []
    wait = stop.wait

    def waiting(seconds: float) -> bool:
        seen_at_wait.append((len(bus.records("docs.tagged")), len(consumer.commits)))
        return wait(seconds)

    stop.wait = waiting  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="connectors.kafka"):
        run_loop(
            consumer, producer, tag_first, stop, batch_size=10, max_wait_ms=1, commit_delay_s=30.0
        )
    assert stop.waits == [30.0]
    assert seen_at_wait == [(1, 0)], "the outputs are out, the commit is not yet made"
    assert len(consumer.commits) == 1
    assert f"docs.raw/0/0 (+0): {HELD} 30.0 s" in caplog.text


def test_without_a_commit_delay_nothing_waits() -> None:
    stop, bus = ManualStop(), MemoryBus()
    bus.send("docs.raw", b"x", "a")
    consumer, producer = loop_over(bus, stop)
    run_loop(consumer, producer, lambda records: [], stop, batch_size=10, max_wait_ms=1)
    assert stop.waits == [] and len(consumer.commits) == 1


def test_run_loop_waits_out_a_broker_outage_met_while_polling() -> None:
    stop, bus = ManualStop(), MemoryBus()
    bus.send("docs.raw", b"x", "a")
    consumer, producer = loop_over(bus, stop)
    polls = consumer.poll
    down = [KafkaConnectionError("111 ECONNREFUSED"), KafkaConnectionError("111 ECONNREFUSED")]

    def poll(timeout_ms: int = 0, max_records: int = 0) -> dict[str, list[Any]]:
        if down:  # the group coordinator cannot be found while the broker is down
            raise down.pop(0)
        return polls(timeout_ms, max_records)

    consumer.poll = poll  # type: ignore[method-assign]
    run_loop(
        consumer,
        producer,
        lambda records: [],
        stop,
        batch_size=10,
        max_wait_ms=1,
        backoff=Backoff(0.5, 2.0, 2.0),
    )
    assert stop.waits == [0.5, 1.0] and down == []
    assert len(consumer.commits) == 1, "the batch polled after the outage is committed"
