"""Properties of decoding over generated messages and near-valid poison (Hypothesis)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loop.errors import MessageError
from loop.messages import Candidate, Document, Message, decode, encode
from tests.strategies import VALID, Poison, mutated, poison, valid

KINDS = sorted(VALID, key=lambda kind: kind.kind)
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def each_kind(test: Callable[[type[Message], st.DataObject], None]) -> Any:
    """Fuzz ``test(kind, data)`` for every message kind, drawing from ``data``."""
    each = pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
    return each(FUZZ(given(data=st.data())(test)))


@each_kind
def test_every_valid_message_round_trips_byte_identically(
    kind: type[Message], data: st.DataObject
) -> None:
    message = data.draw(valid(kind))
    wire = encode(message)
    back = decode(wire, kind)
    assert back == message
    assert encode(back) == wire


@each_kind
def test_poison_is_refused_with_the_message_error_and_nothing_else(
    kind: type[Message], data: st.DataObject
) -> None:
    bad: Poison = data.draw(poison(kind), label="poison")
    with pytest.raises(MessageError) as refused:
        decode(bad.value, kind)
    assert str(refused.value), "a dead letter needs a reason"


@each_kind
def test_whatever_decodes_encodes_again_to_what_decodes_the_same(
    kind: type[Message], data: st.DataObject
) -> None:
    value = data.draw(mutated(kind) | st.binary(max_size=200), label="value")
    try:
        message = decode(value, kind)
    except MessageError:
        return
    wire = encode(message)  # a worker writes what it read: this must not raise...
    assert decode(wire, kind) == message  # ...and the next reader must read the same


@pytest.mark.parametrize(
    "number", [b"NaN", b"Infinity", b"-Infinity", b"1e400"], ids=lambda n: n.decode()
)
def test_a_number_no_float_can_hold_is_refused(number: bytes) -> None:
    # Found by the fuzzing: these decoded, and were written out again as null (the
    # candidate's score, the document's metadata), which no later reader accepts.
    data = b'{"schema": "candidate", "id": "c", "text": "t", "strategy": "s", "reason": "rare", '
    with pytest.raises(MessageError, match="not JSON"):
        decode(data + b'"score": ' + number + b"}", Candidate)
    with pytest.raises(MessageError, match="not JSON"):
        decode(b'{"id": "d", "text": "t", "metadata": {"x": [' + number + b"]}}", Document)
