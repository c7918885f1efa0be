"""Request and response models: the API's public contract (docs/api.md shows them in use)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from loop.registry import ModelCard, Promotion

# ---------------------------------------------------------------------------------- errors


class FieldError(BaseModel):
    """One invalid field of a request."""

    loc: str = Field(description="Where, e.g. `documents.2.text`")
    msg: str = Field(description="What is wrong with it")


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer."""

    error: str = Field(description="Machine-readable code, e.g. `unauthorized`, `no_model`")
    detail: str = Field(description="A sentence for a person")
    errors: list[FieldError] | None = Field(
        default=None, description="Validation errors only: each offending field"
    )
    request_id: str | None = Field(
        default=None,
        description="Server errors (5xx) only: quote it to the operator, whose log holds the "
        "details under it (also in the `X-Request-ID` header)",
    )


def error_responses(descriptions: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for error answers: each status code with :class:`ErrorBody`."""
    return {code: {"model": ErrorBody, "description": text} for code, text in descriptions.items()}


# -------------------------------------------------------------------------------- classify


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("text is empty or only whitespace")
    return text


class DocumentIn(BaseModel):
    """A text to classify, with the id you know it by."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description="Your id for the document; if absent, a stable hash of the text",
    )
    text: str = Field(min_length=1, description="The text; not blank")

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, text: str) -> str:
        return _not_blank(text)


class ClassifyRequest(BaseModel):
    """Either one text (``text``, optionally ``id``) or a batch (``documents``)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"text": "$AAPL beats estimates, shares up 5%"},
                {
                    "documents": [
                        {"id": "tw-1", "text": "$AAPL beats estimates"},
                        {"text": "Fed holds rates steady"},
                    ]
                },
            ]
        },
    )

    text: str | None = Field(default=None, min_length=1, description="One text to classify")
    id: str | None = Field(
        default=None, min_length=1, max_length=512, description="Id of `text` (optional)"
    )
    documents: list[DocumentIn] | None = Field(
        default=None, min_length=1, description="A batch of documents to classify"
    )

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, text: str | None) -> str | None:
        return None if text is None else _not_blank(text)

    @model_validator(mode="after")
    def _one_form(self) -> ClassifyRequest:
        if (self.text is None) == (self.documents is None):
            raise ValueError('give either "text" (one document) or "documents" (a batch), not both')
        if self.documents is not None and self.id is not None:
            raise ValueError('"id" goes inside each of "documents", not beside them')
        return self

    def as_documents(self) -> list[DocumentIn]:
        if self.documents is not None:
            return self.documents
        assert self.text is not None
        return [DocumentIn(id=self.id, text=self.text)]


class Classification(BaseModel):
    """What the model made of one document."""

    id: str = Field(description="The id given, or `h-` and a hash of the text")
    label: str = Field(description="The most probable label")
    score: float = Field(description="The probability of `label`")
    probabilities: dict[str, float] = Field(
        description="Every label's probability; sums to 1, except for a multi-label model, "
        "whose labels are independent yes/no questions"
    )
    labels: list[str] | None = Field(
        default=None,
        description="Multi-label models only: every label whose probability reaches 0.5, the "
        "likeliest first (possibly none); null for a single-label model",
    )
    model_version: str = Field(description="The model version that answered")


class ClassifyResponse(BaseModel):
    """One result per document, in request order; all from the same model version."""

    model_config = ConfigDict(protected_namespaces=())

    model_version: str
    results: list[Classification]


# -------------------------------------------------------------------------------- entities


class EntityOut(BaseModel):
    """An entity in a text: ``text[start:end]``, its type and the extractor's confidence."""

    label: str = Field(description="The entity type, e.g. `FOREX`")
    start: int = Field(description="Offset of the first character (Unicode code points)")
    end: int = Field(description="Offset one past the last character")
    text: str = Field(description="The surface form, exactly `text[start:end]`")
    score: float = Field(description="Confidence in [0, 1]")
    source: str = Field(
        description=(
            "What found it: `model` (the entity version), `gazetteer` (a pattern match of a "
            "known currency pair, coin or listed ticker) or `pattern` (a regex-only match, "
            "e.g. a cashtag no gazetteer lists)"
        ),
    )


class DocumentEntities(BaseModel):
    """The entities of one document."""

    id: str = Field(description="The id given, or `h-` and a hash of the text")
    entities: list[EntityOut]


class EntitiesResponse(BaseModel):
    """One result per document, in request order, all from one extractor version."""

    entity_version: str = Field(
        description="The entity model version that answered, or `patterns` while the task's "
        "patterns serve alone (before the first version is promoted)"
    )
    results: list[DocumentEntities]


class Prediction(Classification):
    """The classes and the entities of one document."""

    entities: list[EntityOut]


class PredictResponse(BaseModel):
    """Classes and entities per document, in request order."""

    model_config = ConfigDict(protected_namespaces=())

    model_version: str
    entity_version: str
    results: list[Prediction]


# ---------------------------------------------------------------------------------- models


class ModelInfo(BaseModel):
    """A model version's card, and whether it is promoted and served."""

    model_config = ConfigDict(protected_namespaces=())

    version: str
    task: str
    kind: str
    labels: list[str]
    parent: str | None
    created_at: datetime
    notes: str | None
    training_args: dict[str, Any]
    counts: dict[str, Any]
    metrics: dict[str, Any] | None = Field(description="Its evaluation, once evaluated")
    promoted: bool = Field(description="The registry's pointer names this version")
    served: bool = Field(description="This API answers /v1/classify with this version")

    @classmethod
    def of(cls, card: ModelCard, promoted: str | None, served: str | None) -> ModelInfo:
        return cls(
            **card.model_dump(),
            promoted=card.version == promoted,
            served=card.version == served,
        )


class PromotionState(BaseModel):
    """The registry's pointer and what this API serves."""

    promoted: str | None = Field(description="The promoted version, or null")
    served: str | None = Field(description="The version this API serves, or null")
    history: list[str] = Field(description="Earlier promotions, oldest first; rollback pops")
    changed_at: datetime | None = Field(description="When the pointer last moved")

    @classmethod
    def of(cls, promotion: Promotion, served: str | None) -> PromotionState:
        return cls(
            promoted=promotion.version,
            served=served,
            history=promotion.history,
            changed_at=promotion.changed_at,
        )


class ModelList(PromotionState):
    """Every version, oldest first, and the promotion state."""

    models: list[ModelInfo]


# ---------------------------------------------------------------------------------- health


HealthStatus = Literal["ok", "no_model", "degraded"]


class Health(BaseModel):
    """Liveness and what is served. Always 200 while the process answers."""

    model_config = ConfigDict(protected_namespaces=())

    status: HealthStatus = Field(
        description="`ok`: serving the promoted version; `no_model`: nothing to serve; "
        "`degraded`: serving something other than the promoted version"
    )
    model_version: str | None = Field(description="The version served, or null")
    promoted_version: str | None = Field(description="The registry's promoted version")
    detail: str = Field(description="A sentence for a person")
    version: str = Field(description="alloop's version")


class WebhookAccepted(BaseModel):
    """What the webhook receiver did with a delivery."""

    delivery: str = Field(description="The delivery's webhook-id")
    event: str = Field(description="Argilla's event type, e.g. response.created")
    labels: int = Field(description="Label events written to the labels topic (0 or 1)")
    rejected: list[str] = Field(
        default_factory=list,
        description="Entity spans of the answer that did not fit the text, each with the "
        "reason; they are not trained on, and the rest of the answer is kept",
    )


class QueueState(BaseModel):
    """Where the labels of one task are: waiting in Argilla, in the store, trained on or not,
    and the last round."""

    task: str = "classification"
    pending_in_argilla: int | None = Field(
        default=None,
        description="Records of the task's Argilla dataset nobody has completed yet; null "
        "when Argilla could not be asked",
    )
    argilla_url: str | None = Field(
        default=None,
        description="Where annotators answer the dataset's records in Argilla; null when "
        "Argilla could not be asked or the dataset does not exist yet",
    )
    answers: int = Field(description="Answers in the label store (one per Argilla response)")
    documents: dict[str, int] = Field(
        description="Documents by status: labelled, discarded, disputed, waiting"
    )
    labelled: int
    not_yet_trained: int = Field(description="Labelled documents the latest version did not see")
    agreement: float | None = Field(
        default=None,
        description="Mean share of annotators who gave a document's winning answer, over the "
        "documents with a submitted answer (1.0 when each has one annotator); null before any",
    )
    latest_version: str | None
    promoted_version: str | None
    last_round_at: datetime | None
    last_round_seconds: float | None
    last_round_version: str | None
    last_round_promoted: bool | None
