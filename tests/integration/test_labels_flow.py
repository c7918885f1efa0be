"""Labels back, on the real broker: a signed Argilla delivery reaches the labels topic through
the API, and the label store keeps it once however often it is delivered."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from api.webhooks import sign
from loop.labels import LabelStore
from loop.messages import LabelEvent, decode
from loop.settings import ArgillaSettings, KafkaSettings, Settings, Topics
from tests.integration.conftest import Env, read_topic
from tests.unit.api.test_webhooks import response_payload

pytestmark = pytest.mark.integration

SECRET = base64.b64encode(b"integration-secret-0123456789abcd").decode()


def settings_for(env: Env) -> Settings:
    return Settings(
        home=env.home,
        registry_dir=env.registry,
        kafka=KafkaSettings(
            bootstrap_servers=env.broker,
            topics=Topics(labels=f"{env.prefix}.labels", partitions=1),
        ),
        argilla=ArgillaSettings(webhook_secret=SecretStr(SECRET)),
    )


def test_a_redelivered_webhook_is_recorded_once(env: Env, tmp_path: Path) -> None:
    settings = settings_for(env)
    payload = response_payload()
    body = json.dumps(payload).encode()
    with TestClient(create_app(settings)) as client:
        for attempt in range(3):  # Argilla retries a delivery it thinks failed
            stamp = int(time.time())
            answer = client.post(
                "/v1/argilla/webhooks",
                content=body,
                headers={
                    "webhook-id": f"msg_{attempt}",
                    "webhook-timestamp": str(stamp),
                    "webhook-signature": sign(SECRET, f"msg_{attempt}", stamp, body),
                },
            )
            assert answer.status_code == 200, answer.text

    records = read_topic(env.broker, settings.kafka.topics.labels, lambda r: len(r) >= 3)
    assert [r.key for r in records] == [b"doc-42"] * 3
    events = [decode(r.value, LabelEvent) for r in records]
    assert {e.response_id for e in events} == {payload["data"]["id"]}

    store = LabelStore(tmp_path / "labels.db")
    assert store.add(events) == 1
    [resolved] = store.labelled()
    assert (resolved.id, resolved.label, resolved.origin) == ("doc-42", "Bullish", "uncertain")
