"""/ui: the page for model owners (docs/ui.md).

The page is three static files in ``api/ui/`` (HTML, a script, a style sheet): no build step,
nothing fetched from elsewhere. It holds no data: the script reads the same ``/v1`` endpoints
as any client (models, evaluations, deltas, curves, the queue, drift), with the API key the
person signs in with, and promotes or rolls back through ``/v1/models``. So the page itself,
its files and ``/ui/settings`` (which tasks are on, whether a key is needed) are open, and
everything they show needs a key, as the rest of the API does.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from api.deps import State
from api.errors import ApiError
from loop.evaluation.curves import ENTITY_OVERALL, OVERALL, PER_LABEL

router = APIRouter(tags=["ui"])

PAGE_DIR = Path(__file__).resolve().parent.parent / "ui"
ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}

# The page loads its own script and style and talks to this API only; images of the curves
# come as blobs the script fetched with the key.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' blob: data:; connect-src 'self'; form-action 'none'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class AssetNotFound(ApiError):
    status_code = 404
    code = "not_found"


class PageSettings(BaseModel):
    """What the page needs to know before it asks for data."""

    tasks: list[str] = Field(description="The tasks with a registry: classification, entities")
    auth: bool = Field(description="Whether the /v1 endpoints need an API key")
    metrics: dict[str, list[str]] = Field(description="Overall curve metrics of each task")
    label_metrics: list[str] = Field(description="Curve metrics of one label or entity type")


@router.get("/ui", include_in_schema=False)
def page() -> FileResponse:
    return FileResponse(
        PAGE_DIR / "index.html", media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS
    )


@router.get(
    "/ui/settings",
    summary="What the model owners' page needs to start",
    description="The tasks that are on and whether the API needs a key; open, like the page.",
)
def page_settings(state: State) -> PageSettings:
    entities = state.settings.entities
    tasks = ["classification", *([entities.task] if entities.enabled else [])]
    return PageSettings(
        tasks=tasks,
        auth=state.keys.enabled,
        metrics={"classification": list(OVERALL), entities.task: list(ENTITY_OVERALL)},
        label_metrics=list(PER_LABEL),
    )


@router.get("/ui/{asset}", include_in_schema=False)
def asset(asset: str) -> FileResponse:
    media = ASSETS.get(asset)
    if media is None:
        raise AssetNotFound(f"no such file of the page: {asset!r}")
    return FileResponse(PAGE_DIR / asset, media_type=media, headers=SECURITY_HEADERS)
