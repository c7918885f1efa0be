"""Outputs too large for the producer: their source record is dead-lettered alone."""

from __future__ import annotations

from connectors.outputs import Output, fit_outputs
from loop.testing.records import Record


def raw(offset: int, key: str, size: int = 100) -> Record:
    return Record("docs.raw", 0, offset, key.encode(), b"r" * size, [])


def test_an_oversized_candidate_dead_letters_its_record_and_drops_its_tagged_copy() -> None:
    a, b = raw(0, "a"), raw(1, "b")
    outputs = [
        Output("docs.tagged", "a", b"t" * 500, source=a),
        Output("docs.tagged", "b", b"t" * 500, source=b),
        Output("candidates", "a", b"c" * 5_000, source=a),
    ]
    fitted = fit_outputs(outputs, 2_048, "w1")
    assert [(o.topic, o.key) for o in fitted] == [("docs.tagged", "b"), ("docs.raw.dlq", "a")]
    dead = fitted[1]
    assert dead.value == a.value, "the dead letter carries the record's own bytes"
    reason = dict(dead.headers)["alloop.error"].decode()
    assert "candidates message made from it is" in reason and "2048 bytes" in reason


def test_outputs_that_fit_are_left_alone() -> None:
    outputs = [Output("docs.tagged", "a", b"t" * 500, source=raw(0, "a"))]
    assert fit_outputs(outputs, 2_048, "w1") == outputs


def test_a_dead_letter_too_large_to_produce_keeps_its_key_and_headers_only() -> None:
    huge = raw(0, "h", size=10_000)
    fitted = fit_outputs([Output("docs.tagged", "h", b"t" * 10_100, source=huge)], 2_048, "w1")
    [dead] = fitted
    assert (dead.topic, dead.key, dead.value) == ("docs.raw.dlq", "h", b"")
    assert dict(dead.headers)["alloop.value-bytes"] == b"10000"
    assert dead.size() <= 2_048


def test_an_oversized_output_without_a_source_is_dropped() -> None:
    outputs = [Output("labels", "x", b"l" * 5_000), Output("labels", "y", b"l" * 10)]
    assert [o.key for o in fit_outputs(outputs, 2_048, "w1")] == ["y"]
