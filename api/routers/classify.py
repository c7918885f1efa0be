"""POST /v1/classify: label texts with the served model."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from fastapi import APIRouter, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.deps import ApiConfig, Metrics, Served
from api.errors import BatchTooLarge, TextTooLong
from api.metrics import ApiMetrics
from api.schemas import (
    Classification,
    ClassifyRequest,
    ClassifyResponse,
    DocumentIn,
    error_responses,
)
from loop.classification.base import applying
from loop.classification.serving import ServedModel
from loop.ids import content_id
from loop.settings import ApiSettings

logger = logging.getLogger(__name__)

router = APIRouter(tags=["classify"])

INFERENCE_BATCH_SIZE = 32

T = TypeVar("T")
"""Texts per forward pass; a request's documents are split into passes of this size."""


def documents_of(body: ClassifyRequest, limits: ApiSettings) -> list[DocumentIn]:
    """The request's documents; batches and texts over the configured limits are refused."""
    documents = body.as_documents()
    check_limits(documents, limits)
    return documents


async def timed(metrics: ApiMetrics, work: Callable[..., T], *args: Any) -> T:
    """``work(*args)`` in a worker thread (inference blocks), its time in the inference
    histogram."""
    started = time.perf_counter()
    result = await run_in_threadpool(work, *args)
    metrics.inference_seconds.observe(time.perf_counter() - started)
    return result


def check_limits(documents: Sequence[DocumentIn], limits: ApiSettings) -> None:
    """Refuse batches and texts over the configured limits, naming the limit."""
    if len(documents) > limits.max_batch:
        raise BatchTooLarge(
            f"{len(documents)} documents in one request; the limit is {limits.max_batch} "
            "(ALLOOP_API__MAX_BATCH): split the batch"
        )
    for position, doc in enumerate(documents):
        if len(doc.text) > limits.max_text_chars:
            which = f"document {position}" + (f" ({doc.id!r})" if doc.id else "")
            raise TextTooLong(
                f"{which} has {len(doc.text)} characters; the limit is {limits.max_text_chars} "
                "(ALLOOP_API__MAX_TEXT_CHARS)"
            )


def result_fields(
    doc: DocumentIn, row: npt.NDArray[np.float32], served: ServedModel
) -> dict[str, Any]:
    """The fields of one document's :class:`Classification` (a :class:`Prediction` adds its
    entities to them)."""
    labels = served.classifier.labels
    best = int(np.argmax(row))
    return {
        "id": doc.id or content_id(doc.text),
        "label": labels[best],
        "labels": applying(labels, row) if served.classifier.multi_label else None,
        "score": round(float(row[best]), 6),
        "probabilities": {label: round(float(p), 6) for label, p in zip(labels, row, strict=True)},
        "model_version": served.version,
    }


def to_results(
    documents: Sequence[DocumentIn], probs: npt.NDArray[np.float32], served: ServedModel
) -> list[Classification]:
    return [
        Classification(**result_fields(doc, row, served))
        for doc, row in zip(documents, probs, strict=True)
    ]


def json_response(body: BaseModel) -> Response:
    """``body`` encoded once, by pydantic. Returning the model instead would have FastAPI
    validate it again against the response model, turn it into Python objects, then encode
    those: the same bytes, at several times the cost. The route keeps its
    ``response_model`` for the OpenAPI schema."""
    return Response(body.model_dump_json().encode(), media_type="application/json")


@router.post(
    "/v1/classify",
    summary="Classify one text or a batch",
    description=(
        'Send `{"text": "..."}` (optionally with `"id"`) for one document, or '
        '`{"documents": [{"id": "...", "text": "..."}, ...]}` for a batch. Every result names '
        "the model version that made it; one request is always answered by one version."
    ),
    response_model=ClassifyResponse,
    responses=error_responses(
        {
            401: "Missing or wrong API key",
            413: "Too many documents, or the body is too large",
            422: "Invalid body: not JSON, empty text, text too long",
            503: "No model is served yet",
        }
    ),
)
async def classify(
    body: ClassifyRequest, served: Served, limits: ApiConfig, metrics: Metrics
) -> Response:
    documents = documents_of(body, limits)
    probs = await timed(
        metrics,
        served.classifier.predict_proba,
        [doc.text for doc in documents],
        INFERENCE_BATCH_SIZE,
    )
    metrics.documents.labels(model_version=served.version).inc(len(documents))
    return json_response(
        ClassifyResponse(model_version=served.version, results=to_results(documents, probs, served))
    )
