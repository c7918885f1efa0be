"""Registering and removing alloop's webhook on the real Argilla server."""

from __future__ import annotations

import pytest

from connectors.argilla.setup import (
    WEBHOOK_EVENTS,
    ensure_webhook,
    owner_client,
    prune_webhooks,
    remove_webhook,
)
from stack.argilla import LocalArgilla

pytestmark = [pytest.mark.integration]

URL = "http://127.0.0.1:9/v1/argilla/webhooks"


def test_an_old_registration_is_narrowed_to_the_answer_events_and_removed(
    argilla: LocalArgilla,
) -> None:
    with owner_client(argilla.url, argilla.credentials.owner_api_key) as http:
        old = http.post(
            "/api/v1/webhooks",
            json={
                "url": URL,
                "events": ["response.created", "response.updated", "record.completed"],
                "description": "registered by an older alloop",
            },
        ).raise_for_status()
        http.patch(f"/api/v1/webhooks/{old.json()['id']}", json={"enabled": False})

        secret = ensure_webhook(http, URL)

        (hook,) = [h for h in http.get("/api/v1/webhooks").json()["items"] if h["url"] == URL]
        assert hook["id"] == old.json()["id"] and secret == old.json()["secret"]
        assert (
            sorted(hook["events"])
            == sorted(WEBHOOK_EVENTS)
            == ["response.created", "response.updated"]
        )
        assert hook["enabled"] is True

        remove_webhook(http, URL)
        assert not [h for h in http.get("/api/v1/webhooks").json()["items"] if h["url"] == URL]


def test_the_local_stack_prunes_its_own_stale_webhooks_only(argilla: LocalArgilla) -> None:
    old = "http://127.0.0.1:10/v1/argilla/webhooks"
    current = "http://127.0.0.1:11/v1/argilla/webhooks"
    foreign = "http://127.0.0.1:12/hooks"
    with owner_client(argilla.url, argilla.credentials.owner_api_key) as http:
        ensure_webhook(http, old)
        ensure_webhook(http, current)
        http.post(
            "/api/v1/webhooks",
            json={"url": foreign, "events": ["record.created"], "description": "another app"},
        ).raise_for_status()

        assert prune_webhooks(http, keep=current) == [old]

        urls = {h["url"] for h in http.get("/api/v1/webhooks").json()["items"]}
        assert {current, foreign} <= urls and old not in urls
        remove_webhook(http, current)
        remove_webhook(http, foreign)
