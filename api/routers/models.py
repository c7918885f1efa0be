"""/v1/models: the registry's versions, promotion and rollback.

Promotion and rollback move the registry's pointer (the same one the CLI and the trainer
move) and then load the version at once, so the answer tells what this API serves now. Other
API and scorer processes pick the change up at their next reload check.

The handlers are plain functions: FastAPI runs them in its threadpool, so file locks and
model loading never block the event loop.
"""

from __future__ import annotations

import logging
import threading
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import TASK_DOC, State, served_version, task_registry
from api.errors import ModelNotLoaded
from api.schemas import ModelInfo, ModelList, PromotionState, error_responses
from loop.messages import ModelEvent

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/models", tags=["models"])

_401 = {401: "Missing or wrong API key"}
_404 = {404: "No such version, or not a version name"}
_500 = {500: "The version is promoted but could not be loaded"}

Version = Annotated[str, Path(description="A version name, e.g. v0003", examples=["v0001"])]
Task = Annotated[str, Query(description=TASK_DOC)]


def _serving_now(state: State, task: str) -> PromotionState:
    """Load what the pointer names, and say so; complain if it could not be loaded."""
    state.refresh()
    promotion = task_registry(state, task).promotion()
    served = served_version(state, task)
    if promotion.version is not None and served != promotion.version:
        raise ModelNotLoaded(
            f"{promotion.version} is promoted but could not be loaded (see the server log); "
            f"this API still serves {served or 'nothing'}; "
            "roll back with POST /v1/models/rollback"
        )
    return PromotionState.of(promotion, served)


@router.get("", summary="List model versions", responses=error_responses(_401))
def list_models(state: State, task: Task = "classification") -> ModelList:
    registry = task_registry(state, task)
    promotion = registry.promotion()
    served = served_version(state, task)
    models = [ModelInfo.of(card, promotion.version, served) for card in registry.cards()]
    return ModelList(**PromotionState.of(promotion, served).model_dump(), models=models)


@router.get(
    "/{version}", summary="Show one model version", responses=error_responses({**_401, **_404})
)
def get_model(version: Version, state: State, task: Task = "classification") -> ModelInfo:
    registry = task_registry(state, task)
    card = registry.card(version)
    return ModelInfo.of(card, registry.promoted(), served_version(state, task))


@router.post(
    "/rollback",
    summary="Roll back to the previously promoted version",
    description="Moves the pointer back one promotion and serves that version at once.",
    responses=error_responses({**_401, 409: "No earlier promotion to roll back to", **_500}),
)
def rollback(state: State, task: Task = "classification") -> PromotionState:
    registry = task_registry(state, task)
    before = registry.promoted()
    promotion = registry.rollback()
    logger.info("rolled back %s from %s to %s through the API", task, before, promotion.version)
    if promotion.version is not None and not state.settings.is_entity_task(task):
        _announce(
            state, ModelEvent(event="rolled_back", version=promotion.version, previous=before)
        )
    return _serving_now(state, task)


def _announce(state: State, event: ModelEvent) -> None:
    """Put the event on the models topic in the background: the answer does not wait for the
    broker, and a broker that is down costs only the announcement (see connectors.kafka.announce).
    Only the classifier's changes are announced (a model event names no task); the scorers
    follow the entity registry's pointer on their own."""
    from connectors.kafka import announce
    from stack.discovery import bootstrap_servers

    locate = partial(bootstrap_servers, state.settings)
    threading.Thread(
        target=announce, args=(locate, state.settings, [event]), name="alloop-announce", daemon=True
    ).start()


@router.post(
    "/{version}/promote",
    summary="Promote a version",
    description="Moves the pointer to `version` and serves it at once. Promoting the version "
    "already promoted changes nothing.",
    responses=error_responses({**_401, **_404, **_500}),
)
def promote(version: Version, state: State, task: Task = "classification") -> PromotionState:
    registry = task_registry(state, task)
    before = registry.promoted()
    promotion = registry.promote(version)
    logger.info("promoted %s %s through the API", task, promotion.version)
    if before != version and not state.settings.is_entity_task(task):
        _announce(state, ModelEvent(event="promoted", version=version, previous=before))
    return _serving_now(state, task)
