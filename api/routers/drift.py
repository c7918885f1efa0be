"""GET /v1/drift: what the scorer's drift monitor reported per window (docs/drift.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from api.deps import State
from loop.drift.report import DriftReport

router = APIRouter(tags=["drift"])


@router.get(
    "/v1/drift",
    summary="Drift per window of the tagged stream",
    description="The scorer's drift reports, oldest first: per window of documents, each "
    "method's score, its threshold, whether it crossed, and `drift` when any did. "
    "`format=png` or `svg` draws each method's score against its threshold over the windows. "
    "Empty until the scorer has tagged its reference windows and one more. See docs/drift.md.",
    responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}},
)
def drift_history(
    state: State,
    last: Annotated[int, Query(ge=1, le=10_000, description="The newest windows only")] = 200,
    format: Annotated[Literal["json", "png", "svg"], Query()] = "json",
) -> Any:
    reports: list[DriftReport] = state.drift_reports(last)
    if format == "json":
        return reports
    from loop.drift.picture import render

    media = "image/png" if format == "png" else "image/svg+xml"
    return Response(render(reports, format), media_type=media)
