"""Preparing an Argilla server for alloop, through its HTTP API with an owner's key.

Each step is idempotent: run it again and it finds what exists. ``alloop stack up`` runs them
against the local Argilla; ``alloop argilla setup`` against any Argilla (production).
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

logger = logging.getLogger(__name__)

WEBHOOK_EVENTS = ["response.created", "response.updated"]
"""The events that carry answers. ``record.completed`` carries none (the label store resolves
agreement from the answers), and Argilla delivers each event in a job of its own, so
subscribing to it would double the delivery work for nothing."""
WEBHOOK_DESCRIPTION = "alloop: answers to the labels topic"


def owner_client(url: str, api_key: str) -> httpx.Client:
    return httpx.Client(
        base_url=url.rstrip("/"), headers={"X-Argilla-Api-Key": api_key}, timeout=30
    )


def _items(answer: httpx.Response) -> list[dict[str, Any]]:
    items = answer.raise_for_status().json()["items"]
    return list(items)


def ensure_workspace(http: httpx.Client, name: str) -> str:
    """The id of workspace ``name``, created if missing."""
    for workspace in _items(http.get("/api/v1/me/workspaces")):
        if workspace["name"] == name:
            return str(workspace["id"])
    created = http.post("/api/v1/workspaces", json={"name": name}).raise_for_status().json()
    logger.info("created Argilla workspace %s", name)
    return str(created["id"])


def ensure_member(http: httpx.Client, workspace_id: str, username: str) -> None:
    """Make ``username`` a member of the workspace, so its queue shows the datasets."""
    members = _items(http.get(f"/api/v1/workspaces/{workspace_id}/users"))
    if any(m["username"] == username for m in members):
        return
    users = _items(http.get("/api/v1/users"))
    user = next((u for u in users if u["username"] == username), None)
    if user is None:
        raise LookupError(f"Argilla has no user {username!r}")
    http.post(
        f"/api/v1/workspaces/{workspace_id}/users", json={"user_id": user["id"]}
    ).raise_for_status()
    logger.info("added %s to the Argilla workspace", username)


def ensure_webhook(http: httpx.Client, url: str) -> str:
    """Register alloop's webhook receiver at ``url`` (once); return the signing secret."""
    for hook in _items(http.get("/api/v1/webhooks")):
        if hook["url"] == url:
            if not hook.get("enabled", True) or sorted(hook["events"]) != sorted(WEBHOOK_EVENTS):
                http.patch(
                    f"/api/v1/webhooks/{hook['id']}",
                    json={"enabled": True, "events": WEBHOOK_EVENTS},
                ).raise_for_status()
            return str(hook["secret"])
    created = (
        http.post(
            "/api/v1/webhooks",
            json={"url": url, "events": WEBHOOK_EVENTS, "description": WEBHOOK_DESCRIPTION},
        )
        .raise_for_status()
        .json()
    )
    logger.info("registered the Argilla webhook for %s", url)
    return str(created["secret"])


def prune_webhooks(http: httpx.Client, keep: str) -> list[str]:
    """Remove alloop's webhooks (by their description) for any URL but ``keep``; the URLs
    removed. For an Argilla that one alloop stack owns: a webhook left from an earlier API
    port would get, and retry, every delivery."""
    removed = []
    for hook in _items(http.get("/api/v1/webhooks")):
        if hook.get("description") == WEBHOOK_DESCRIPTION and hook["url"] != keep:
            http.delete(f"/api/v1/webhooks/{hook['id']}").raise_for_status()
            removed.append(str(hook["url"]))
            logger.info("removed the stale Argilla webhook for %s", hook["url"])
    return removed


def remove_webhook(http: httpx.Client, url: str) -> None:
    """Delete the webhook for ``url``. Argilla sends every event to every enabled webhook and
    retries failed deliveries, so one left behind for a receiver that is gone slows all
    deliveries."""
    for hook in _items(http.get("/api/v1/webhooks")):
        if hook["url"] == url:
            http.delete(f"/api/v1/webhooks/{hook['id']}").raise_for_status()
            logger.info("removed the Argilla webhook for %s", url)
