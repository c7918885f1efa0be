"""GET /health: is the process up, and what does it serve. Open: no API key needed."""

from __future__ import annotations

import logging

from fastapi import APIRouter

import loop
from api.deps import State
from api.schemas import Health, HealthStatus
from loop.errors import AlloopError

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    summary="Liveness and the served model",
    description="Always 200 while the process answers; `status` says whether a model is "
    "served. Needs no API key.",
)
def health(state: State) -> Health:
    served = state.watcher.version
    try:
        promoted = state.registry.promoted()
    except AlloopError as exc:
        return Health(
            status="degraded",
            model_version=served,
            promoted_version=None,
            detail=f"the registry's pointer cannot be read: {exc}",
            version=loop.__version__,
        )
    status: HealthStatus
    if served is None and promoted is None:
        status = "no_model"
        detail = "no model is promoted: POST /v1/classify answers 503 until one is"
    elif served is None:
        status = "no_model"
        detail = (
            f"{promoted} is promoted but not loaded (a reload is due, or it failed: see the log)"
        )
    elif served != promoted:
        status = "degraded"
        detail = f"serving {served} while {promoted or 'nothing'} is promoted (a reload is due, or it failed)"
    else:
        status = "ok"
        detail = f"serving {served}"
    return Health(
        status=status,
        model_version=served,
        promoted_version=promoted,
        detail=detail,
        version=loop.__version__,
    )
