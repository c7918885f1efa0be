"""The Argilla webhook receiver: signatures, translation into label events, failures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError
from standardwebhooks.webhooks import Webhook

from api.app import create_app
from api.state import AppState
from api.webhooks import BadSignature, sign, verify
from loop.label_db import DeliveryLog
from loop.labels import LabelStore
from loop.messages import LabelEvent
from loop.settings import ApiSettings, ArgillaSettings, EntitySettings, Settings
from stack.credentials import ArgillaCredentials

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


def signed(
    payload: dict[str, Any] | bytes,
    secret: str = SECRET,
    stamp: int | None = None,
    msg_id: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A delivery as Argilla sends it: the body and its Standard Webhooks headers."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    stamp = int(time.time()) if stamp is None else stamp
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": Webhook(secret).sign(
            msg_id, datetime.fromtimestamp(stamp, UTC), body.decode()
        ),
        "content-type": "application/json",
    }
    return body, headers


def deliver(
    client: TestClient,
    payload: dict[str, Any] | bytes,
    secret: str = SECRET,
    stamp: int | None = None,
    msg_id: str | None = None,
) -> Any:
    body, headers = signed(payload, secret, stamp, msg_id)
    return client.post(URL, content=body, headers=headers)


class StoreSink(Sink):
    """Label events into a real label store, as the trainer would put them."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.store = LabelStore(path)

    def publish(self, events: Sequence[LabelEvent]) -> None:
        super().publish(events)
        self.store.add(events)


def make_client(
    tmp_path: Path, sink: Sink, secret: str | None = SECRET, **sections: Any
) -> TestClient:
    settings = Settings(
        home=tmp_path,
        api=ApiSettings(keys=[SecretStr("k")], reload_check_s=3600),
        argilla=ArgillaSettings(webhook_secret=SecretStr(secret) if secret else None),
        **sections,
    )
    app = create_app(settings)
    state = app.state.alloop
    assert isinstance(state, AppState)
    state.sink = sink
    return TestClient(app)


def test_a_signed_answer_becomes_a_label_event(tmp_path: Path) -> None:
    sink = Sink()
    with make_client(tmp_path, sink) as client:
        answer = deliver(client, response_payload(), msg_id="msg_1")
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
    body, headers = signed(b'{"a": 1}', msg_id="m")
    rotated = "v1," + base64.b64encode(bytes(32)).decode()  # made with an older secret
    headers["webhook-signature"] = f"{rotated} {headers['webhook-signature']}"
    assert verify(SECRET, headers, body) == "m"
    with pytest.raises(BadSignature):
        verify(SECRET, headers, body + b" ")


def test_our_signature_is_the_one_argilla_makes() -> None:
    body, headers = signed(b'{"type": "response.created"}', msg_id="msg_x", stamp=1_800_000_000)
    assert sign(SECRET, "msg_x", 1_800_000_000, body) == headers["webhook-signature"]


@pytest.mark.parametrize(
    "signature", ["v1", "v1,not base64!", "v1,a,b", "v2,whatever", ""], ids=str
)
def test_a_malformed_signature_header_is_a_401_not_a_500(tmp_path: Path, signature: str) -> None:
    body, headers = signed(response_payload())
    headers["webhook-signature"] = signature
    with make_client(tmp_path, Sink()) as client:
        answer = client.post(URL, content=body, headers=headers)
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == "bad_signature"


@pytest.mark.parametrize("secret", ["", "   "], ids=["empty", "blank"])
def test_an_empty_secret_is_refused_when_the_settings_are_read(secret: str) -> None:
    with pytest.raises(ValidationError, match="webhook secret is empty"):
        ArgillaSettings(webhook_secret=SecretStr(secret))
    with pytest.raises(ValidationError, match="webhook secret is empty"):
        ArgillaSettings(webhook_secret=secret)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("secret", "needle"),
    [("not base64 at all!", "not base64"), (base64.b64encode(b"short").decode(), "5 bytes")],
)
def test_a_secret_that_is_no_standard_webhooks_key_is_refused(secret: str, needle: str) -> None:
    with pytest.raises(ValidationError, match=needle) as caught:
        ArgillaSettings(webhook_secret=SecretStr(secret))
    assert secret not in str(caught.value.errors(include_input=False))


def test_off_turns_webhooks_off_explicitly(tmp_path: Path) -> None:
    assert ArgillaSettings(webhook_secret=SecretStr("off")).webhook_secret is None
    prefixed = ArgillaSettings(webhook_secret=SecretStr(f"whsec_{SECRET}")).webhook_secret
    assert prefixed is not None


def test_a_delivery_signed_with_an_empty_key_is_refused(tmp_path: Path) -> None:
    """The local stack's recorded secret is read at delivery: an empty one trusts nothing."""
    ArgillaCredentials(
        url="http://argilla", owner_api_key="o", annotator_api_key="a", webhook_secret=""
    ).save(tmp_path / "stack")
    sink = Sink()
    body = json.dumps(response_payload()).encode()
    stamp = int(time.time())
    forged = hmac.new(b"", f"msg_f.{stamp}.".encode() + body, hashlib.sha256).digest()
    headers = {
        "webhook-id": "msg_f",
        "webhook-timestamp": str(stamp),
        "webhook-signature": "v1," + base64.b64encode(forged).decode(),
    }
    with make_client(tmp_path, sink, secret=None) as client:
        answer = client.post(URL, content=body, headers=headers)
    assert answer.status_code == 503, answer.text
    assert "empty" in answer.json()["detail"]
    assert sink.events == []


def test_a_replayed_delivery_is_refused_and_never_replaces_a_newer_answer(tmp_path: Path) -> None:
    store = StoreSink(tmp_path / "labels" / "labels.db")
    first = response_payload(label="Bullish")
    edited = response_payload(label="Bearish")
    edited["data"]["updated_at"] = "2026-11-24T10:05:00"
    captured = signed(first, msg_id="msg_first")
    with make_client(tmp_path, store) as client:
        assert client.post(URL, content=captured[0], headers=captured[1]).status_code == 200
        assert deliver(client, edited).status_code == 200
        replay = client.post(URL, content=captured[0], headers=captured[1])
    assert replay.status_code == 409, replay.text
    assert replay.json()["error"] == "replayed_delivery"
    assert [e.label for e in store.events] == ["Bullish", "Bearish"]
    with make_client(tmp_path, store) as restarted:  # the ids it saw are in the label store
        again = restarted.post(URL, content=captured[0], headers=captured[1])
    assert again.status_code == 409, "a replay after a restart got through"
    assert [e.label for e in store.events] == ["Bullish", "Bearish"]
    (held,) = store.store.answers()
    assert held.label == "Bearish", "an old delivery replaced the newer answer"


def test_a_delivery_processed_by_one_api_is_refused_by_another_on_the_same_store(
    tmp_path: Path,
) -> None:
    sink = Sink()
    body, headers = signed(response_payload(), msg_id="msg_shared")
    with make_client(tmp_path, sink) as first, make_client(tmp_path, sink) as second:
        assert first.post(URL, content=body, headers=headers).status_code == 200
        replay = second.post(URL, content=body, headers=headers)
        assert replay.status_code == 409, replay.text
        assert first.post(URL, content=body, headers=headers).status_code == 409
    assert len(sink.events) == 1


def test_a_delivery_that_could_not_be_written_may_come_again_with_its_id(tmp_path: Path) -> None:
    sink = Sink(fail=True)
    body, headers = signed(response_payload())
    with make_client(tmp_path, sink) as client:
        assert client.post(URL, content=body, headers=headers).status_code == 503
        sink.fail = False
        assert client.post(URL, content=body, headers=headers).status_code == 200
    assert len(sink.events) == 1


def test_seen_deliveries_are_forgotten_once_their_timestamp_is_too_old(tmp_path: Path) -> None:
    seen = DeliveryLog(tmp_path / "labels.db", window_s=300)
    assert seen.claim("m1", stamp=1000, now=1000)
    assert not seen.claim("m1", stamp=1000, now=1001)  # being processed
    seen.done("m1", stamp=1000, now=1001)
    assert not seen.claim("m1", stamp=1000, now=1299)
    assert not DeliveryLog(seen.path, window_s=300).claim("m1", stamp=1000, now=1299)
    assert seen.claim("m2", stamp=1400, now=1400)
    seen.done("m2", stamp=1400, now=1400)
    assert len(seen) == 1  # m1 expired
    assert seen.claim("m3", stamp=1400, now=1400)
    seen.release("m3")  # its processing failed: the sender may try again
    assert seen.claim("m3", stamp=1400, now=1401)


def test_a_discarded_entity_answer_without_spans_is_recorded(tmp_path: Path) -> None:
    payload = response_payload("discarded", None)
    payload["data"]["record"]["metadata"]["task"] = "entities"
    payload["data"]["record"]["dataset"]["name"] = "alloop-entities"
    sink = Sink()
    settings_extra = {"entities": EntitySettings(enabled=True)}
    with make_client(tmp_path, sink, **settings_extra) as client:
        answer = deliver(client, payload)
    assert answer.status_code == 200, answer.text
    assert [(e.task, e.status, e.spans) for e in sink.events] == [("entities", "discarded", None)]


def unreadable() -> list[Any]:
    metadata_list = response_payload()
    metadata_list["data"]["record"]["metadata"] = ["not", "a", "mapping"]
    values_list = response_payload()
    values_list["data"]["values"] = ["label", "Bullish"]
    bad_time = response_payload()
    bad_time["data"]["updated_at"] = "yesterday"
    data_text = response_payload()
    data_text["data"] = "a string"
    return [metadata_list, values_list, bad_time, data_text, b"[" * 100_000]


@pytest.mark.parametrize(
    "payload", unreadable(), ids=["metadata", "values", "time", "data", "deep"]
)
def test_a_delivery_that_cannot_be_read_is_a_400_with_the_reason(
    tmp_path: Path, payload: Any
) -> None:
    sink = Sink()
    with make_client(tmp_path, sink) as client:
        answer = deliver(client, payload)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_input" and answer.json()["detail"]
    assert sink.events == []


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
