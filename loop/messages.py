"""Typed, versioned messages: what travels on the topics, as JSON.

Every message carries ``schema`` (its kind) and ``v`` (its schema version). Decoding checks
both, so a worker can tell a message it does not understand from one that is broken, and
route either to its dead-letter topic with the reason.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import from_json

from loop.errors import MessageError

SCHEMA_VERSION = 1


def utcnow() -> datetime:
    return datetime.now(UTC)


class Message(BaseModel):
    """Base of every message on the wire."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: ClassVar[str] = "message"
    schema_name: str = Field(default="", alias="schema")
    v: int = SCHEMA_VERSION

    def model_post_init(self, __context: Any) -> None:
        if not self.schema_name:
            object.__setattr__(self, "schema_name", self.kind)

    @property
    def key(self) -> str:
        """The Kafka key: the document id, or what stands for it."""
        raise NotImplementedError


class Document(Message):
    """A document to be tagged, as producers publish it to ``docs.raw``."""

    kind: ClassVar[str] = "document"
    id: str = Field(min_length=1, max_length=512)
    text: str = Field(min_length=1)
    label: str | None = None
    labels: list[str] | None = None  # a multi-label gold answer (the labels that apply)
    source: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("text is blank")
        return text

    @property
    def key(self) -> str:
        return self.id


class EntityMention(BaseModel):
    """An entity span on the wire: ``text[start:end]`` of its document, typed ``label``.

    Offsets are Python string indices (Unicode code points), end exclusive. ``source`` says
    what found a served entity: ``model`` (the entity version), ``gazetteer`` (a pattern match
    of a known pair, coin or listed ticker) or ``pattern`` (a regex-only match, e.g. another
    cashtag); None where it does not apply (people's answers) and in messages written before
    the field existed.
    """

    model_config = ConfigDict(frozen=True)

    label: str = Field(min_length=1)
    start: int = Field(ge=0)
    end: int = Field(gt=0)
    text: str
    score: float = Field(default=1.0, ge=0, le=1)
    source: str | None = None


class TaggedDocument(Message):
    """A document with what the model made of it, on ``docs.tagged``.

    ``status`` is ``unscored`` while no model is promoted; ``label``, ``probabilities`` and
    ``model_version`` are then empty. A multi-label model also sets ``labels``: every label
    whose probability reaches the threshold, the likeliest first (``label`` is then the first
    of them, or None when none applies). The payload holds no wall-clock time, so re-scoring the
    same document with the same version gives the same bytes.
    """

    kind: ClassVar[str] = "tagged_document"
    id: str
    text: str
    status: Literal["scored", "unscored"]
    label: str | None = None
    labels: list[str] | None = None
    score: float | None = None
    probabilities: dict[str, float] = Field(default_factory=dict)
    model_version: str | None = None
    entities: list[EntityMention] = Field(default_factory=list)
    entity_version: str | None = None  # the extractor that found them ("patterns" before any)
    source: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.id


class Candidate(Message):
    """A document worth a person's time, on its way to Argilla."""

    kind: ClassVar[str] = "candidate"
    id: str
    text: str
    task: str = "classification"
    model_version: str | None = None
    strategy: str
    score: float
    reason: Literal["uncertain", "rare", "unseen", "random", "cold-start", "evaluation", "drift"]
    probabilities: dict[str, float] = Field(default_factory=dict)
    multi_label: bool = False  # the probabilities are independent, one per label
    spans: list[EntityMention] = Field(default_factory=list)  # suggested entities
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.id


class LabelEvent(Message):
    """A person's answer for a document, keyed by Argilla's response id for idempotency.

    A classification answer sets ``label`` (single-label datasets) or ``labels`` (multi-label
    datasets: the labels that apply, sorted; possibly none); an entity answer sets ``spans``.
    """

    kind: ClassVar[str] = "label"
    id: str
    text: str
    task: str = "classification"
    label: str | None = None
    labels: list[str] | None = None
    spans: list[EntityMention] | None = None  # an entity answer (task of an entity dataset)
    rejected: list[str] = Field(default_factory=list)  # why spans of the answer were dropped
    status: Literal["submitted", "discarded"] = "submitted"
    response_id: str
    annotator: str | None = None
    reason: str | None = None
    agreement: float | None = None
    origin: str | None = None  # why the document was selected: "evaluation", "uncertain", ...
    model_version: str | None = None  # the version whose suggestion the annotator saw
    labelled_at: datetime = Field(default_factory=utcnow)

    @field_validator("labels")
    @classmethod
    def _sorted(cls, value: list[str] | None) -> list[str] | None:
        return sorted(set(value)) if value is not None else None

    @field_validator("labelled_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        # Argilla sends naive UTC times; keep every time comparable.
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    def same_answer(self, other: LabelEvent) -> bool:
        """Whether ``other`` says the same thing (who relayed it does not matter)."""
        mine = (self.response_id, self.label, self.labels, self.spans, self.status)
        theirs = (other.response_id, other.label, other.labels, other.spans, other.status)
        return mine == theirs and self.labelled_at == other.labelled_at

    @property
    def key(self) -> str:
        return self.id


class ModelEvent(Message):
    """A change in the registry (a version registered, promoted or rolled back), or drift
    seen by the scorer's monitor in the documents the served ``version`` tags (``drift``:
    the window's summary, docs/drift.md)."""

    kind: ClassVar[str] = "model_event"
    event: Literal["registered", "promoted", "rolled_back", "drift"]
    version: str
    previous: str | None = None
    at: datetime = Field(default_factory=utcnow)
    drift: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        return self.version


M = TypeVar("M", bound=Message)


def encode(message: Message) -> bytes:
    """Serialise a message to JSON bytes."""
    return message.model_dump_json(by_alias=True).encode("utf-8")


def _finite(value: Any) -> bool:
    """Whether every float in a parsed JSON value is finite (the parser nests 200 deep at most)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return False
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return True


def decode(data: bytes | None, model: type[M]) -> M:
    """Parse JSON bytes into ``model``; raise :class:`MessageError` saying what is wrong."""
    if data is None:
        raise MessageError("empty message (no value)")
    try:
        # pydantic's parser, not json.loads: it refuses lone surrogates (text that could never
        # be encoded again), nesting deeper than 200 levels (json.loads overflows the stack),
        # integers too long to convert and NaN or Infinity (not JSON), each as a ValueError.
        raw = from_json(data, allow_inf_nan=False)
    except (ValueError, RecursionError) as exc:
        raise MessageError(f"not JSON: {exc}") from exc
    if not _finite(raw):
        # 1e400 is JSON, but no float holds it: it would be written out again as null
        raise MessageError("not JSON: a number too large for a float (it would be lost)")
    if not isinstance(raw, dict):
        raise MessageError(f"expected a JSON object, got {type(raw).__name__}")
    schema = raw.get("schema", model.kind)
    if schema != model.kind:
        raise MessageError(f"expected schema {model.kind!r}, got {schema!r}")
    version = raw.get("v", SCHEMA_VERSION)
    # Strictly the integer: in Python, True == 1 and 1.0 == 1.
    if type(version) is not int or version != SCHEMA_VERSION:
        raise MessageError(f"unsupported schema version {version!r} (this build reads v1)")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'message'}: {err['msg']}"
            for err in exc.errors()
        )
        raise MessageError(f"invalid {model.kind}: {problems}") from exc
