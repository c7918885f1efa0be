"""What on the models topic wakes a registry check, and what is skipped."""

from __future__ import annotations

from connectors.model_events import reloading
from loop.messages import Document, ModelEvent, encode


def test_promotions_rollbacks_and_new_versions_wake_a_check_and_the_rest_is_skipped() -> None:
    promoted = ModelEvent(event="promoted", version="v0002", previous="v0001")
    rolled = ModelEvent(event="rolled_back", version="v0001", previous="v0002")
    registered = ModelEvent(event="registered", version="v0003")
    drift = encode(promoted).replace(b'"promoted"', b'"drift"')  # a kind this build lacks
    other_schema = b'{"schema": "drift_alarm", "v": 1, "task": "classification"}'
    values = [
        encode(promoted),
        b"not json",
        None,
        drift,
        other_schema,
        encode(Document(id="d1", text="a document on the wrong topic")),
        encode(rolled),
        encode(registered),
    ]
    assert reloading(values) == [promoted, rolled, registered]
