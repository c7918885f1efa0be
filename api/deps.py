"""Typed dependencies: routers declare what they need with these ``Annotated`` aliases.

Each is an ``async def``: FastAPI runs a plain ``def`` dependency in the thread pool, one
thread hand-over per dependency and request. These only read what the app holds (and hash a
key), so they run on the event loop; nothing here may block.
"""

from __future__ import annotations

import logging
from typing import Annotated, cast

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.errors import NoModelServed, Unauthorized, UnknownTask
from api.metrics import ApiMetrics
from api.state import AppState
from loop.classification.serving import ModelWatcher, ServedModel
from loop.errors import ConfigError
from loop.registry import ModelRegistry
from loop.settings import ApiSettings

logger = logging.getLogger(__name__)

# auto_error=False: a missing credential is ours to answer (401, in our error format), and
# either scheme may carry the key. Both appear under "Authorize" in /docs.
_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="One of the keys in ALLOOP_API__KEYS"
)
_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <key>`, same keys")


def app_state(request: Request) -> AppState:
    """What the app holds (a plain function: the dependencies below read it directly)."""
    return cast(AppState, request.app.state.alloop)


async def get_state(request: Request) -> AppState:
    return app_state(request)


# Each reads the request's app itself rather than depending on ``State``: every level of
# nesting is one more dependency to solve on each request.
async def get_api_settings(request: Request) -> ApiSettings:
    return app_state(request).settings.api


async def get_registry(request: Request) -> ModelRegistry:
    return app_state(request).registry


async def get_watcher(request: Request) -> ModelWatcher:
    return app_state(request).watcher


async def get_metrics(request: Request) -> ApiMetrics:
    return app_state(request).metrics


State = Annotated[AppState, Depends(get_state)]
ApiConfig = Annotated[ApiSettings, Depends(get_api_settings)]
Registry = Annotated[ModelRegistry, Depends(get_registry)]
Watcher = Annotated[ModelWatcher, Depends(get_watcher)]
Metrics = Annotated[ApiMetrics, Depends(get_metrics)]


async def require_key(
    request: Request,
    api_key: Annotated[str | None, Security(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> None:
    """Let the request through if it carries a configured key (or if no keys are set)."""
    state = app_state(request)
    if not state.keys.enabled:
        return
    offered = [key for key in (api_key, bearer.credentials if bearer else None) if key]
    if not offered:
        logger.info("refused %s %s: no API key", request.method, request.url.path)
        raise Unauthorized(
            "an API key is required: send it as 'X-API-Key: <key>' or 'Authorization: Bearer <key>'"
        )
    # Check every offered key, so that timing does not tell which header was right.
    accepted = [state.keys.accepts(key) for key in offered]
    if not any(accepted):
        logger.info("refused %s %s: wrong API key", request.method, request.url.path)
        raise Unauthorized("the API key is not valid")


async def require_model(request: Request) -> ServedModel:
    """The model served at this moment; a reload later in the request does not change it."""
    served = app_state(request).watcher.served
    if served is None:
        raise NoModelServed(
            "no model is served: no version is promoted (or it failed to load); "
            "promote one with POST /v1/models/{version}/promote or `alloop` and retry"
        )
    return served


Served = Annotated[ServedModel, Depends(require_model)]


TASK_DOC = "`classification` (default), or the entity task's name (`entities`)"


def task_registry(state: AppState, task: str) -> ModelRegistry:
    """The registry of ``task`` where :meth:`Settings.task_registry_path` puts it: the
    classifier's is the one the app keeps open, the entity extractor's is opened here."""
    try:
        path = state.settings.task_registry_path(task)
    except ConfigError as exc:
        raise UnknownTask(str(exc)) from exc
    return state.registry if path == state.registry.root else ModelRegistry(path)


def served_version(state: AppState, task: str) -> str | None:
    """The version this API serves for ``task`` (None while none is loaded)."""
    if not state.settings.is_entity_task(task):
        return state.watcher.version
    served = state.entities.served if state.entities is not None else None
    return served.version if served is not None else None
