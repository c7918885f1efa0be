"""The Argilla webhook receiver: signatures, translation into label events, failures."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from api.state import AppState
from api.webhooks import BadSignature, sign, verify
from loop.messages import LabelEvent
from loop.settings import ApiSettings, ArgillaSettings, Settings

SECRET = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
URL = "/v1/argilla/webhooks"


def response_payload(
    status: str = "submitted", label: str | None = "Bullish", event: str = "response.created"
) -> dict[str, Any]:
    return {
        "type": event,
        "version": 1,
        "timestamp": "2026-11-24T10:00:00.000000Z",
        "data": {
            "id": "8a0c9c8e-0000-4000-8000-000000000001",
            "values": {"label": {"value": label}} if label else None,
            "status": status,
            "record": {
                "id": "5f1d0000-0000-4000-8000-000000000002",
                "status": "completed",
                "fields": {"text": "$TSLA to the moon"},
                "metadata": {"reason": "uncertain", "model_version": "v0003"},
                "external_id": "doc-42",
                "dataset": {"name": "alloop-classification"},
            },
            "user": {"username": "annotator"},
            "inserted_at": "2026-11-24T09:59:00",
            "updated_at": "2026-11-24T10:00:00",
        },
    }


class Sink:
    def __init__(self, fail: bool = False) -> None:
        self.events: list[LabelEvent] = []
        self.fail = fail

    def publish(self, events: Sequence[LabelEvent]) -> None:
        if self.fail:
            raise ConnectionError("broker unreachable")
        self.events.extend(events)


def deliver(
    client: TestClient, payload: dict[str, Any], secret: str = SECRET, stamp: int | None = None
) -> Any:
    body = json.dumps(payload).encode()
    stamp = int(time.time()) if stamp is None else stamp
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(secret, "msg_1", stamp, body),
        "content-type": "application/json",
    }
    return client.post(URL, content=body, headers=headers)


def make_client(tmp_path: Path, sink: Sink, secret: str | None = SECRET) -> TestClient:
    settings = Settings(
        home=tmp_path,
        api=ApiSettings(keys=[SecretStr("k")], reload_check_s=3600),
        argilla=ArgillaSettings(webhook_secret=SecretStr(secret) if secret else None),
    )
    app = create_app(settings)
    state = app.state.alloop
    assert isinstance(state, AppState)
    state.sink = sink
    return TestClient(app)


def test_a_signed_answer_becomes_a_label_event(tmp_path: Path) -> None:
    sink = Sink()
    with make_client(tmp_path, sink) as client:
        answer = deliver(client, response_payload())
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "delivery": "msg_1",
        "event": "response.created",
        "labels": 1,
        "rejected": [],
    }
    [event] = sink.events
    assert (event.id, event.label, event.status) == ("doc-42", "Bullish", "submitted")
    assert event.response_id == "8a0c9c8e-0000-4000-8000-000000000001"
    assert (event.task, event.origin, event.model_version) == (
        "classification",
        "uncertain",
        "v0003",
    )
    assert event.annotator == "annotator"


def test_a_discarded_record_is_recorded_as_discarded(tmp_path: Path) -> None:
    sink = Sink()
    with make_client(tmp_path, sink) as client:
        assert deliver(client, response_payload("discarded", None)).status_code == 200
    assert [(e.status, e.label) for e in sink.events] == [("discarded", None)]


@pytest.mark.parametrize(
    "payload",
    [
        response_payload("draft"),
        response_payload(event="record.completed"),
        response_payload(event="dataset.created"),
    ],
)
def test_drafts_and_other_events_write_nothing(tmp_path: Path, payload: dict[str, Any]) -> None:
    sink = Sink()
    with make_client(tmp_path, sink) as client:
        answer = deliver(client, payload)
    assert answer.status_code == 200
    assert answer.json()["labels"] == 0
    assert sink.events == []


def test_a_wrong_or_stale_signature_is_refused(tmp_path: Path) -> None:
    sink = Sink()
    other = base64.b64encode(b"another secret entirely").decode()
    with make_client(tmp_path, sink) as client:
        wrong = deliver(client, response_payload(), secret=other)
        stale = deliver(client, response_payload(), stamp=int(time.time()) - 3600)
        unsigned = client.post(URL, json=response_payload())
    for answer in (wrong, stale, unsigned):
        assert answer.status_code == 401
        assert answer.json()["error"] == "bad_signature"
    assert "secret" in wrong.json()["detail"]
    assert "clock" in stale.json()["detail"]
    assert sink.events == []


def test_without_a_secret_webhooks_are_off(tmp_path: Path) -> None:
    with make_client(tmp_path, Sink(), secret=None) as client:
        answer = deliver(client, response_payload())
    assert answer.status_code == 503
    assert "ALLOOP_ARGILLA__WEBHOOK_SECRET" in answer.json()["detail"]


def test_an_answer_without_a_label_or_document_is_a_4xx(tmp_path: Path) -> None:
    no_label = response_payload(label=None)
    not_ours = response_payload()
    del not_ours["data"]["record"]["external_id"]
    with make_client(tmp_path, Sink()) as client:
        for payload, needle in ((no_label, "no 'label' value"), (not_ours, "external_id")):
            answer = deliver(client, payload)
            assert answer.status_code == 400
            assert needle in answer.json()["detail"]


def test_when_the_topic_is_down_argilla_is_told_to_retry(tmp_path: Path) -> None:
    with make_client(tmp_path, Sink(fail=True)) as client:
        answer = deliver(client, response_payload())
    assert answer.status_code == 503
    assert answer.json()["error"] == "labels_unavailable"


def test_verify_accepts_any_of_several_signatures() -> None:
    body = b'{"a": 1}'
    now = 1_800_000_000
    good = sign(SECRET, "m", now, body)
    headers = {
        "webhook-id": "m",
        "webhook-timestamp": str(now),
        "webhook-signature": f"v1,xx {good}",
    }
    assert verify(SECRET, headers, body, now=now) == "m"
    with pytest.raises(BadSignature):
        verify(SECRET, headers, body + b" ", now=now)


def test_answers_in_datasets_that_are_not_alloops_are_ignored(tmp_path: Path) -> None:
    sink = Sink()
    payload = response_payload()
    payload["data"]["record"]["dataset"]["name"] = "someone-elses-dataset"
    with make_client(tmp_path, sink) as client:
        answer = deliver(client, payload)
    assert answer.status_code == 200 and answer.json()["labels"] == 0
    assert sink.events == []


def test_a_span_answer_keeps_its_valid_spans_and_names_the_rejected_one(tmp_path: Path) -> None:
    text = "AUDJPY 🚀 and $TSLA"
    payload = response_payload()
    payload["data"]["values"] = {
        "spans": {
            "value": [
                {"label": "FOREX", "start": 0, "end": 6},
                {"label": "STOCK", "start": text.index("$TSLA"), "end": len(text)},
                {"label": "STOCK", "start": 3, "end": 99},
            ]
        }
    }
    payload["data"]["record"]["fields"]["text"] = text
    payload["data"]["record"]["metadata"]["task"] = "entities"
    payload["data"]["record"]["dataset"]["name"] = "alloop-entities"
    sink = Sink()
    with make_client(tmp_path, sink) as client:
        answer = deliver(client, payload)
    assert answer.status_code == 200, answer.text
    assert answer.json()["labels"] == 1
    assert answer.json()["rejected"] == [
        "span 2 {'label': 'STOCK', 'start': 3, 'end': 99}: offsets outside a text of "
        f"{len(text)} characters"
    ]
    (event,) = sink.events
    assert event.task == "entities" and event.label is None
    assert [(m.label, m.text) for m in event.spans or []] == [
        ("FOREX", "AUDJPY"),
        ("STOCK", "$TSLA"),
    ]
    assert event.rejected == answer.json()["rejected"]
