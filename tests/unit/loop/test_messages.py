"""Messages on the wire: round trips, the envelope, and errors that say what is wrong."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from loop.errors import MessageError
from loop.messages import (
    SCHEMA_VERSION,
    Candidate,
    Document,
    EntityMention,
    LabelEvent,
    Message,
    ModelEvent,
    TaggedDocument,
    decode,
    encode,
)

AT = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)

SAMPLES: list[Message] = [
    Document(
        id="tw-1",
        text="$AAPL beats estimates",
        label="Bullish",
        source="feed-a",
        metadata={"lang": "en", "n": 3},
    ),
    TaggedDocument(
        id="tw-1",
        text="$AAPL beats estimates",
        status="scored",
        label="Bullish",
        score=0.91,
        probabilities={"Bearish": 0.03, "Bullish": 0.91, "Neutral": 0.06},
        model_version="v0003",
        source="feed-a",
        metadata={"lang": "en"},
    ),
    Candidate(
        id="tw-2",
        text="EUR/CHF tumbles",
        model_version="v0003",
        strategy="margin",
        score=0.12,
        reason="unseen",
        probabilities={"Bearish": 0.45, "Bullish": 0.55},
        metadata={"span": [0, 7]},
    ),
    LabelEvent(
        id="tw-2",
        text="EUR/CHF tumbles",
        label="Bearish",
        status="submitted",
        response_id="resp-9",
        annotator="ann",
        agreement=0.5,
        labelled_at=AT,
    ),
    ModelEvent(event="promoted", version="v0004", previous="v0003", at=AT),
]


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: m.kind)
def test_every_kind_survives_a_round_trip(message: Message) -> None:
    data = encode(message)
    back = decode(data, type(message))
    assert back == message
    assert back.model_dump() == message.model_dump()
    assert encode(back) == data


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: m.kind)
def test_wire_format_carries_schema_and_version(message: Message) -> None:
    raw = json.loads(encode(message))
    assert raw["schema"] == message.kind
    assert raw["v"] == SCHEMA_VERSION == 1
    assert "schema_name" not in raw


def test_wire_format_of_a_document_is_the_documented_one() -> None:
    raw = json.loads(encode(SAMPLES[0]))
    assert raw == {
        "schema": "document",
        "v": 1,
        "id": "tw-1",
        "text": "$AAPL beats estimates",
        "label": "Bullish",
        "labels": None,
        "source": "feed-a",
        "metadata": {"lang": "en", "n": 3},
    }


def test_message_keys_are_the_document_id_or_the_version() -> None:
    assert [m.key for m in SAMPLES] == ["tw-1", "tw-1", "tw-2", "tw-2", "v0004"]


def test_a_producer_written_document_decodes() -> None:
    data = b'{"schema": "document", "v": 1, "id": "x", "text": "hello", "extra": 1}'
    doc = decode(data, Document)
    assert (doc.id, doc.text, doc.label, doc.metadata) == ("x", "hello", None, {})


def test_tagged_document_encoding_is_deterministic() -> None:
    def make() -> TaggedDocument:
        return TaggedDocument(
            id="d",
            text="t",
            status="scored",
            label="a",
            score=0.7,
            probabilities={"a": 0.7, "b": 0.3},
            model_version="v0001",
        )

    first = encode(make())
    second = encode(make())
    assert first == second
    # and a re-score of the same bytes decodes to the same bytes again
    assert encode(decode(first, TaggedDocument)) == first


def test_entity_sources_are_optional_both_ways() -> None:
    # A tagged document written before entities had a source still decodes...
    old = (
        b'{"schema": "tagged_document", "v": 1, "id": "d", "text": "AUDJPY up", '
        b'"status": "unscored", "entities": [{"label": "FOREX", "start": 0, "end": 6, '
        b'"text": "AUDJPY", "score": 0.9}], "entity_version": "patterns"}'
    )
    (mention,) = decode(old, TaggedDocument).entities
    assert mention.source is None
    # ...and a reader that knows no source ignores it (extra fields are ignored).
    new = json.loads(old)
    new["entities"][0]["source"] = "gazetteer"
    assert decode(json.dumps(new).encode(), TaggedDocument).entities[0].source == "gazetteer"
    assert EntityMention.model_validate(new["entities"][0] | {"later": 1}).source == "gazetteer"


def test_unscored_tagged_document_has_no_prediction() -> None:
    raw = json.loads(encode(TaggedDocument(id="d", text="t", status="unscored")))
    assert raw["status"] == "unscored"
    assert raw["label"] is None and raw["model_version"] is None and raw["probabilities"] == {}


def test_messages_are_immutable() -> None:
    doc = Document(id="a", text="b")
    with pytest.raises(ValueError):
        doc.text = "changed"


_DROP = object()


def _document_json(**fields: object) -> bytes:
    base: dict[str, object] = {"schema": "document", "v": 1, "id": "d1", "text": "hi"}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not _DROP}).encode()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (None, "empty message"),
        (b"{not json", "not JSON"),
        (b"\xff\xfe\x00", "not JSON"),
        (b"", "not JSON"),
        (b"[1, 2]", "expected a JSON object, got list"),
        (b'"just a string"', "expected a JSON object, got str"),
        (_document_json(schema="candidate"), "expected schema 'document', got 'candidate'"),
        (_document_json(v=2), "unsupported schema version 2"),
        (_document_json(v="1"), "unsupported schema version '1'"),
        (_document_json(v=True), "unsupported schema version True"),
        (_document_json(v=1.0), "unsupported schema version 1.0"),
        (_document_json(text=_DROP), "invalid document: text: Field required"),
        (_document_json(id=_DROP), "invalid document: id: Field required"),
        (_document_json(text="   \n\t"), "text is blank"),
        (_document_json(text=""), "invalid document: text:"),
        (_document_json(id=""), "invalid document: id:"),
        (_document_json(text=5), "invalid document: text:"),
    ],
    ids=[
        "none",
        "bad-json",
        "bad-utf8",
        "empty-bytes",
        "array",
        "string",
        "wrong-schema",
        "future-version",
        "version-as-string",
        "version-as-true",
        "version-as-float",
        "missing-text",
        "missing-id",
        "blank-text",
        "empty-text",
        "empty-id",
        "text-not-string",
    ],
)
def test_decode_errors_say_what_is_wrong(data: bytes | None, expected: str) -> None:
    with pytest.raises(MessageError) as caught:
        decode(data, Document)
    assert expected in str(caught.value)


POISON = {
    "deep-nesting": b"[" * 100_000,
    "deep-metadata": b'{"schema": "document", "id": "d", "text": "t", "metadata": {"a": '
    + b"[" * 5_000
    + b"]" * 5_000
    + b"}}",
    "lone-surrogate-in-metadata": b'{"schema": "document", "id": "d", "text": "t", '
    b'"metadata": {"k": "\\ud800"}}',
    "lone-surrogate-in-text": b'{"schema": "document", "id": "d", "text": "a \\udfff b"}',
    "encoded-surrogate": b'{"schema": "document", "id": "d", "text": "a \xed\xa0\x80 b"}',
    "huge-number": b'{"schema": "document", "id": "d", "text": "t", "metadata": {"n": '
    + b"9" * 5_000
    + b"}}",
}


@pytest.mark.parametrize("data", list(POISON.values()), ids=list(POISON))
def test_poison_that_would_crash_a_worker_is_a_message_error(data: bytes) -> None:
    """Nesting too deep for the parser, text that is not valid Unicode (it decoded, then
    failed to encode in the scorer) and numbers too large to read are a MessageError, never
    another exception that would crash the worker on every replay."""
    with pytest.raises(MessageError, match="not JSON"):
        decode(data, Document)


def test_a_valid_surrogate_pair_is_an_ordinary_character() -> None:
    doc = decode(b'{"schema": "document", "id": "d", "text": "up \\ud83d\\ude80"}', Document)
    assert doc.text == "up \U0001f680"
    assert decode(encode(doc), Document) == doc


def test_decode_rejects_a_message_of_another_kind() -> None:
    data = encode(SAMPLES[2])  # a candidate
    with pytest.raises(MessageError, match="expected schema 'label', got 'candidate'"):
        decode(data, LabelEvent)


def test_decode_names_every_invalid_field() -> None:
    data = json.dumps(
        {"schema": "candidate", "v": 1, "id": "c", "text": "t", "score": "high", "reason": "meh"}
    ).encode()
    with pytest.raises(MessageError) as caught:
        decode(data, Candidate)
    message = str(caught.value)
    assert message.startswith("invalid candidate:")
    for field in ("strategy", "score", "reason"):
        assert f"{field}:" in message
