"""The FastAPI app: ``create_app(settings)`` builds it; nothing is loaded at import.

At start-up (``lifespan``) the promoted model is loaded through a :class:`ModelWatcher`, and a
background task checks the registry's pointer every ``api.reload_check_s`` seconds, and at
once when the ``models`` topic announces a promotion or rollback
(:mod:`connectors.model_events`), so a promotion made by another process (the CLI, the
trainer) is served without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from functools import partial

from fastapi import Depends, FastAPI
from starlette.concurrency import run_in_threadpool

import loop
from api import errors
from api.auth import KeyChecker
from api.deps import require_key
from api.limits import BodyLimitMiddleware
from api.metrics import ApiMetrics, MetricsMiddleware
from api.routers import (
    argilla,
    classify,
    drift,
    entities,
    evaluations,
    health,
    metrics,
    models,
    ui,
)
from api.state import AppState
from connectors.model_events import ModelEventListener
from loop.classification.serving import ModelWatcher
from loop.entities.serving import EntityTagger, ExtractorWatcher, load_patterns
from loop.registry import ModelRegistry
from loop.settings import Settings
from stack.discovery import bootstrap_servers

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Classify texts with the promoted model, inspect and promote model versions, and watch the
service. Every answer names the model version that made it.

Send an API key as `X-API-Key: <key>` or `Authorization: Bearer <key>` to every `/v1` endpoint;
`/health`, `/metrics`, these docs and the page at `/ui` (whose data needs a key) are open.
See docs/api.md.
"""

TAGS = [
    {"name": "classify", "description": "Label texts with the served model."},
    {"name": "entities", "description": "Entities in texts, alone or with the classes."},
    {"name": "models", "description": "Model versions, promotion and rollback."},
    {"name": "evaluations", "description": "Evaluations, deltas, improvement curves, the queue."},
    {"name": "drift", "description": "Drift of the tagged stream, per window."},
    {"name": "argilla", "description": "Answers from Argilla's webhooks (signed, no key)."},
    {"name": "health", "description": "Liveness and the served version (no key needed)."},
    {"name": "metrics", "description": "Prometheus metrics (no key needed)."},
    {"name": "ui", "description": "The model owners' page at /ui (its data needs a key)."},
]


async def _reload_forever(state: AppState, wake: asyncio.Event) -> None:
    """Check the registry's pointer every ``reload_check_s`` seconds, or at once when ``wake``
    is set; load what changed."""
    interval = state.settings.api.reload_check_s
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), interval)
        wake.clear()  # before the check: an event during it calls for another
        try:
            await run_in_threadpool(state.refresh)
        except Exception:  # keep checking: the next look may succeed
            logger.exception("the model reload check failed")


def _state(app: FastAPI) -> AppState:
    state = app.state.alloop
    assert isinstance(state, AppState)
    return state


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the promoted model, start the reload checks; stop them at shut-down."""
    state = _state(app)
    if not state.keys.enabled:
        logger.warning(
            "no API keys are configured (ALLOOP_API__KEYS): authentication is OFF; "
            "anyone who can reach %s:%s can classify and promote",
            state.settings.api.host,
            state.settings.api.port,
        )
    await run_in_threadpool(state.refresh)
    if state.watcher.version is None:
        logger.warning(
            "no model is served yet (registry %s); /v1/classify answers 503 until one is promoted",
            state.registry.root,
        )
    else:
        logger.info("serving model %s from %s", state.watcher.version, state.registry.root)
    wake = asyncio.Event()
    reloader = asyncio.create_task(_reload_forever(state, wake), name="alloop-model-reload")
    listener = _listen_to_model_events(state.settings, wake)
    try:
        yield
    finally:
        if listener is not None:
            await run_in_threadpool(listener.stop)
        reloader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reloader
        state.close()


def _listen_to_model_events(settings: Settings, wake: asyncio.Event) -> ModelEventListener | None:
    """A listener that sets ``wake`` (from its thread) on each promotion or rollback event."""
    if not settings.kafka.model_events:
        return None
    loop = asyncio.get_running_loop()
    return ModelEventListener(
        partial(bootstrap_servers, settings),
        settings,
        lambda _: loop.call_soon_threadsafe(wake.set),
    ).start()


def create_app(settings: Settings) -> FastAPI:
    """Build the API for ``settings``. The model is loaded when the app starts, not here."""
    registry = ModelRegistry(settings.registry_path)
    app_metrics = ApiMetrics()
    task = settings.entities
    state = AppState(
        settings=settings,
        registry=registry,
        watcher=ModelWatcher(registry, settings.precision),
        metrics=app_metrics,
        keys=KeyChecker(settings.api.keys),
        entities=EntityTagger(
            ExtractorWatcher(ModelRegistry(settings.entity_registry_path), settings.precision),
            load_patterns(task.gazetteers) if task.enabled and task.patterns else None,
            tuple(task.types),
            task.merge,
        ),
    )
    app = FastAPI(
        title="alloop",
        version=loop.__version__,
        summary="Active-learning labeling loop: classification and model versions",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    app.state.alloop = state
    errors.install(app)
    # The last added middleware is the outermost: metrics time the whole request.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.api.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=app_metrics)
    app.include_router(classify.router, dependencies=[Depends(require_key)])
    app.include_router(entities.router, dependencies=[Depends(require_key)])
    app.include_router(models.router, dependencies=[Depends(require_key)])
    app.include_router(evaluations.router, dependencies=[Depends(require_key)])
    app.include_router(drift.router, dependencies=[Depends(require_key)])
    app.include_router(argilla.router)  # signed by Argilla instead of an API key
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(ui.router)  # the page and its files; its data comes from /v1
    return app
