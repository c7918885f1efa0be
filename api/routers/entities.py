"""POST /v1/entities and POST /v1/predict: entities alone, or with the classes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from fastapi import APIRouter, Response

from api.deps import ApiConfig, Metrics, Served, State
from api.errors import NoEntityModel
from api.routers.classify import (
    INFERENCE_BATCH_SIZE,
    documents_of,
    json_response,
    result_fields,
    timed,
)
from api.schemas import (
    ClassifyRequest,
    DocumentEntities,
    DocumentIn,
    EntitiesResponse,
    EntityOut,
    Prediction,
    PredictResponse,
    error_responses,
)
from api.state import AppState
from loop.classification.serving import ServedModel
from loop.ids import content_id

router = APIRouter(tags=["entities"])

ERRORS = {
    401: "Missing or wrong API key",
    413: "Too many documents, or the body is too large",
    422: "Invalid body: not JSON, empty text, text too long",
    503: "No entity model is promoted and the patterns are off (or no classifier, for predict)",
}


def find_entities(
    state: AppState, documents: Sequence[DocumentIn]
) -> tuple[str, list[list[EntityOut]]]:
    """The entity version and the entities of each document (blocking: run in a thread)."""
    tagger = state.entities
    version, found = (
        tagger.tag([doc.text for doc in documents], INFERENCE_BATCH_SIZE)
        if tagger is not None
        else (None, [])
    )
    if version is None:
        raise NoEntityModel(
            "no entity model is served: no entity version is promoted and the task's patterns "
            "are off (ALLOOP_ENTITIES__ENABLED, ALLOOP_ENTITIES__PATTERNS)"
        )
    return version, [[EntityOut(**m.model_dump()) for m in spans] for spans in found]


def predict_both(
    served: ServedModel, state: AppState, documents: Sequence[DocumentIn]
) -> tuple[npt.NDArray[np.float32], tuple[str, list[list[EntityOut]]]]:
    """The classifier's probabilities and the entities (blocking: run in a thread)."""
    probs = served.classifier.predict_proba([doc.text for doc in documents], INFERENCE_BATCH_SIZE)
    return probs, find_entities(state, documents)


@router.post(
    "/v1/entities",
    summary="Find the entities in one text or a batch",
    description=(
        'The same body as `/v1/classify`: `{"text": "..."}` or `{"documents": [...]}`. Each '
        "entity has its type, character offsets into the text (Unicode code points, end "
        "exclusive), its surface form and a confidence. Before the first entity version is "
        "promoted, the task's patterns answer (`entity_version: patterns`)."
    ),
    response_model=EntitiesResponse,
    responses=error_responses(ERRORS),
)
async def entities(
    body: ClassifyRequest, state: State, limits: ApiConfig, metrics: Metrics
) -> Response:
    documents = documents_of(body, limits)
    version, found = await timed(metrics, find_entities, state, documents)
    return json_response(
        EntitiesResponse(
            entity_version=version,
            results=[
                DocumentEntities(id=doc.id or content_id(doc.text), entities=spans)
                for doc, spans in zip(documents, found, strict=True)
            ],
        )
    )


@router.post(
    "/v1/predict",
    summary="Classes and entities of one text or a batch",
    description=(
        "`/v1/classify` and `/v1/entities` in one call: each result has the label, its "
        "probabilities and the entities, and names both versions that answered."
    ),
    response_model=PredictResponse,
    responses=error_responses(ERRORS),
)
async def predict(
    body: ClassifyRequest, served: Served, state: State, limits: ApiConfig, metrics: Metrics
) -> Response:
    documents = documents_of(body, limits)
    # One hand-over to the thread pool for both models, not one each.
    probs, (version, found) = await timed(metrics, predict_both, served, state, documents)
    metrics.documents.labels(model_version=served.version).inc(len(documents))
    return json_response(
        PredictResponse(
            model_version=served.version,
            entity_version=version,
            results=[
                Prediction(**result_fields(doc, row, served), entities=spans)
                for doc, row, spans in zip(documents, probs, found, strict=True)
            ],
        )
    )
