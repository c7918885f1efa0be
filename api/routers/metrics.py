"""GET /metrics: Prometheus text exposition. Open, like /health: scrapers carry no API key,
and the metrics hold counts, timings and the model version, never texts or keys."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from api.deps import State

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description="Text exposition format; see docs/api.md for the metric names. Needs no API key.",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
)
def metrics(state: State) -> Response:
    state.metrics.set_served(state.watcher.version)
    state.observe_drift()
    return Response(state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
