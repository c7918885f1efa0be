"""``serve(settings)``: what ``alloop api`` runs."""

from __future__ import annotations

from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from api.server import serve
from loop.registry import ModelRegistry
from tests.unit.api.conftest import settings_for


def test_serve_runs_the_app_on_the_configured_address(
    registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    serve(settings_for(registry, host="0.0.0.0", port=8123))
    [(app, options)] = calls
    assert isinstance(app, FastAPI)
    assert app.state.alloop.registry.root == registry.root
    assert (options["host"], options["port"]) == ("0.0.0.0", 8123)
    assert app.state.alloop.watcher.version is None, "nothing is loaded before start-up"
