"""Hypothesis strategies over the wire messages: valid ones, and near-valid poison.

``valid(kind)`` draws messages a producer may write (every field in range, any Unicode a
JSON text can carry). ``poison(kind)`` draws the bytes of what a worker must dead-letter:
a valid message broken in one way (a missing or mistyped field, another ``schema``, a bad
``v``, nesting too deep, a lone surrogate, a byte that is not UTF-8, a number JSON cannot
carry...), or bytes that are not a message at all. Each poison draw says how it was made,
so a failing example names its kind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from loop.messages import (
    Candidate,
    Document,
    EntityMention,
    LabelEvent,
    Message,
    ModelEvent,
    TaggedDocument,
)

# Text a JSON document can carry: any code point but a lone surrogate.
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
nonblank = text.filter(lambda s: bool(s.strip()))
ids = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=512)
short_ids = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=24)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
metadata = st.dictionaries(text, json_values, max_size=4)
unit = st.floats(min_value=0.0, max_value=1.0)
when = st.datetimes(
    timezones=st.just(UTC)
    | st.builds(
        timezone, st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timedelta(minutes=m))
    )
)
probabilities = st.dictionaries(short_ids, unit, max_size=4)


@st.composite
def mentions(draw: st.DrawFn) -> EntityMention:
    start = draw(st.integers(0, 200))
    return EntityMention(
        label=draw(short_ids),
        start=start,
        end=draw(st.integers(start + 1, start + 40)),
        text=draw(text),
        score=draw(unit),
        source=draw(st.none() | st.sampled_from(["model", "gazetteer", "pattern"])),
    )


documents = st.builds(
    Document,
    id=ids,
    text=nonblank,
    label=st.none() | text,
    labels=st.none() | st.lists(text, max_size=3),
    source=st.none() | text,
    metadata=metadata,
)
tagged_documents = st.builds(
    TaggedDocument,
    id=ids,
    text=text,
    status=st.sampled_from(["scored", "unscored"]),
    label=st.none() | short_ids,
    labels=st.none() | st.lists(short_ids, max_size=3),
    score=st.none() | unit,
    probabilities=probabilities,
    model_version=st.none() | short_ids,
    entities=st.lists(mentions(), max_size=3),
    entity_version=st.none() | short_ids,
    source=st.none() | text,
    metadata=metadata,
)
candidates = st.builds(
    Candidate,
    id=ids,
    text=nonblank,
    task=st.sampled_from(["classification", "entities"]),
    model_version=st.none() | short_ids,
    strategy=short_ids,
    score=st.floats(allow_nan=False, allow_infinity=False),
    reason=st.sampled_from(["uncertain", "rare", "unseen", "random", "cold-start", "evaluation"]),
    probabilities=probabilities,
    multi_label=st.booleans(),
    spans=st.lists(mentions(), max_size=3),
    metadata=metadata,
)
label_events = st.builds(
    LabelEvent,
    id=ids,
    text=text,
    task=st.sampled_from(["classification", "entities"]),
    label=st.none() | short_ids,
    labels=st.none() | st.lists(short_ids, max_size=3),
    spans=st.none() | st.lists(mentions(), max_size=3),
    rejected=st.lists(text, max_size=2),
    status=st.sampled_from(["submitted", "discarded"]),
    response_id=short_ids,
    annotator=st.none() | text,
    reason=st.none() | text,
    agreement=st.none() | unit,
    origin=st.none() | text,
    model_version=st.none() | short_ids,
    labelled_at=when,
)
model_events = st.builds(
    ModelEvent,
    event=st.sampled_from(["registered", "promoted", "rolled_back"]),
    version=short_ids,
    previous=st.none() | short_ids,
    at=when,
)

VALID: dict[type[Message], st.SearchStrategy[Any]] = {
    Document: documents,
    TaggedDocument: tagged_documents,
    Candidate: candidates,
    LabelEvent: label_events,
    ModelEvent: model_events,
}


def valid(kind: type[Message]) -> st.SearchStrategy[Any]:
    """Messages of ``kind`` as a producer may write them."""
    return VALID[kind]


# What each required field must be, and values of the wrong type (or out of range) for it.
NOT_A_STRING = st.integers() | st.lists(st.integers(), max_size=2) | st.just({}) | st.none()
NOT_A_NUMBER = st.sampled_from(["high", [], {}, None, "0.5x"])
REQUIRED: dict[type[Message], dict[str, st.SearchStrategy[Any]]] = {
    Document: {
        "id": NOT_A_STRING | st.just("") | st.just("x" * 513),
        "text": NOT_A_STRING | st.sampled_from(["", " ", "\n\t", "\u3000"]),
    },
    TaggedDocument: {
        "id": NOT_A_STRING,
        "text": NOT_A_STRING,
        "status": NOT_A_STRING | st.just("maybe"),
    },
    Candidate: {
        "id": NOT_A_STRING,
        "text": NOT_A_STRING,
        "strategy": NOT_A_STRING,
        "score": NOT_A_NUMBER,
        "reason": NOT_A_STRING | st.just("because"),
    },
    LabelEvent: {
        "id": NOT_A_STRING,
        "text": NOT_A_STRING,
        "response_id": NOT_A_STRING,
        "status": st.just("maybe") | st.integers(),
        "labelled_at": st.sampled_from(["yesterday", "2024-13-01T00:00:00Z", [], {}]),
        "spans": st.just([{"label": "A", "start": -1, "end": 2, "text": "x"}])
        | st.just([{"label": "", "start": 0, "end": 2, "text": "x"}])
        | st.just([{"start": 0, "end": 2}])
        | st.just("AUDJPY"),
    },
    ModelEvent: {
        "event": NOT_A_STRING | st.just("deleted"),
        "version": NOT_A_STRING,
        "at": st.sampled_from(["soon", [1], {}]),
    },
}
BAD_VERSIONS = st.sampled_from([True, False, 1.0, "1", 0, 2, -1, None, [1], {"v": 1}, 10**40])
NOT_UTF8 = st.sampled_from([b"\xff", b"\xfe", b"\xc3", b"\xe9t\xe9", b"\xed\xa0\x80", b"\x80"])
LONE = st.sampled_from(["\ud800", "\udfff", "a\ud83d", "\udc00b"])
MARK = "\u2603MARK\u2603"  # a snowman-framed placeholder, replaced in the bytes


@dataclass(frozen=True)
class Poison:
    """The bytes of a message a reader must refuse, and how they were made."""

    how: str
    value: bytes | None


def _dump(raw: Any) -> bytes:
    return json.dumps(raw, ensure_ascii=False).encode("utf-8")


def _wire(message: Message) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(message.model_dump_json(by_alias=True))
    return raw


@st.composite
def _broken(draw: st.DrawFn, kind: type[Message]) -> Poison:
    raw = _wire(draw(valid(kind)))
    fields = REQUIRED[kind]
    how = draw(
        st.sampled_from(
            [
                "missing",
                "wrong-type",
                "bad-v",
                "other-schema",
                "deep",
                "lone-surrogate",
                "not-utf8",
                "long-int",
                "not-finite",
                "not-an-object",
                "truncated",
            ]
        )
    )
    name = draw(st.sampled_from(sorted(fields)))
    if how == "missing":
        raw.pop(name, None)
        if kind.model_fields[name].is_required():
            return Poison(f"missing {name}", _dump(raw))
        how = "wrong-type"  # a field with a default: make it wrong instead
    if how == "wrong-type":
        raw[name] = draw(fields[name])
        return Poison(f"wrong {name}: {raw[name]!r:.40}", _dump(raw))
    if how == "bad-v":
        raw["v"] = draw(BAD_VERSIONS)
        return Poison(f"v {raw['v']!r}", _dump(raw))
    if how == "other-schema":
        raw["schema"] = draw(
            st.sampled_from(
                ["candidate", "document", "label", "model_event", "Document", "", 1]
            ).filter(lambda s: s != kind.kind)
        )
        return Poison(f"schema {raw['schema']!r}", _dump(raw))
    if how == "deep":
        depth = draw(st.integers(250, 20_000))
        raw["nested"] = MARK
        deep = b"[" * depth + (b"]" * depth if draw(st.booleans()) else b"")
        return Poison(f"nested {depth}", _dump(raw).replace(_dump(MARK), deep))
    if how == "lone-surrogate":
        field = draw(st.sampled_from([f for f in ("id", "text", "version") if f in raw]))
        raw[field] = f"{raw[field]}{draw(LONE)}"
        # ensure_ascii writes the lone surrogate as the \\uXXXX escape a producer would send
        return Poison(f"lone surrogate in {field}", json.dumps(raw).encode("ascii"))
    if how == "not-utf8":
        raw["extra"] = MARK
        data = _dump(raw).replace(MARK.encode(), draw(NOT_UTF8))
        return Poison("not UTF-8", data)
    if how == "long-int":
        raw["extra"] = MARK
        digits = b"9" * draw(st.integers(4400, 6000))
        return Poison("a long integer", _dump(raw).replace(_dump(MARK), digits))
    if how == "not-finite":
        # NaN and Infinity are not JSON; 1e400 is, but no float holds it (it would be written
        # out again as null). Where a reader would keep it: the metadata, or a score.
        if "metadata" in raw:
            raw["metadata"] = {**raw["metadata"], "x": MARK}
        elif "agreement" in raw:
            raw["agreement"] = MARK
        else:
            raw["extra"] = MARK
        literal = draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e999"]))
        return Poison(f"number {literal.decode()}", _dump(raw).replace(_dump(MARK), literal))
    if how == "not-an-object":
        other = draw(st.sampled_from([[raw], "x", 1, None, True, []]))
        return Poison("not an object", _dump(other))
    data = _dump(raw)
    cut = draw(st.integers(0, len(data) - 1))
    return Poison(f"truncated at {cut}", data[:cut])


def poison(kind: type[Message]) -> st.SearchStrategy[Poison]:
    """Bytes a reader of ``kind`` must refuse (each with how it was made)."""
    return st.one_of(
        _broken(kind),
        st.sampled_from([Poison("no value", None), Poison("empty", b"")]),
        # random bytes are never a valid message (and seldom JSON)
        st.binary(max_size=64).map(lambda b: Poison("random bytes", b)),
    )


@dataclass(frozen=True)
class Item:
    """One record of a generated batch: its bytes, its key, and whether it is poison."""

    key: bytes | None
    value: bytes | None
    poison: str | None  # how it was made, or None for a valid message


@st.composite
def batches(draw: st.DrawFn, kind: type[Message], max_size: int = 12) -> list[Item]:
    """A batch of records of ``kind``: valid messages (keyed by their key) and poison
    interleaved, with keys that are sometimes missing or another message's."""
    items: list[Item] = []
    for _ in range(draw(st.integers(1, max_size))):
        if draw(st.booleans()):
            message = draw(valid(kind))
            items.append(Item(message.key.encode("utf-8"), encode_extra(draw, message), None))
        else:
            bad = draw(poison(kind))
            key = draw(st.none() | st.just(b"shared-key") | st.binary(max_size=8))
            items.append(Item(key, bad.value, bad.how))
    return items


def encode_extra(draw: st.DrawFn, message: Message) -> bytes:
    """A valid message's bytes, sometimes with a field this build does not know (readers
    ignore it) or with its ``schema``/``v`` left out (they default to the reader's)."""
    raw = _wire(message)
    if draw(st.booleans()):
        raw["added_later"] = draw(json_values)
    if draw(st.integers(0, 5)) == 0:
        del raw["v"]
    return _dump(raw)


@st.composite
def mutated(draw: st.DrawFn, kind: type[Message]) -> bytes:
    """A valid message with one or two fields set to any JSON value: valid or poison, a
    reader cannot know in advance (lax conversions such as ``"0.5"`` for a float included)."""
    raw = _wire(draw(valid(kind)))
    for _ in range(draw(st.integers(1, 2))):
        name = draw(st.sampled_from(sorted(raw)))
        raw[name] = draw(
            json_values
            | st.sampled_from(["0.5", "1", "2024-01-01", "2024-01-01T10:00:00+01:00", 1e300])
            | st.integers(-(10**12), 10**12)
            | st.lists(
                st.fixed_dictionaries(
                    {"label": text, "start": st.integers(), "end": st.integers(), "text": text}
                ),
                max_size=2,
            )
        )
    return _dump(raw)


def samples(strategy: st.SearchStrategy[Any], n: int) -> list[Any]:
    """``n`` draws of ``strategy``, the same on every run (for tests that cannot be driven by
    Hypothesis, such as one run through the real broker)."""
    drawn: list[Any] = []

    @settings(
        max_examples=n,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value: Any) -> None:
        drawn.append(value)

    collect()
    return drawn[:n]
