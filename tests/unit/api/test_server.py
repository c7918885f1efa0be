"""``serve(settings)``: what ``alloop api`` runs."""

from __future__ import annotations

from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from api.server import serve
from loop.errors import ConfigError
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


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "api.example.com", ""])
def test_without_keys_the_api_refuses_to_listen_beyond_loopback(
    registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    calls: list[object] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(app))
    with pytest.raises(ConfigError, match="ALLOOP_API__KEYS") as refused:
        serve(settings_for(registry, host=host, keys=[]))
    assert "loopback" in str(refused.value)
    assert calls == [], "nothing listens"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "localhost"])
def test_without_keys_the_api_listens_on_loopback(
    registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    serve(settings_for(registry, host=host, keys=[]))
    assert [options["host"] for options in calls] == [host]
