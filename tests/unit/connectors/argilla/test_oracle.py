"""The oracle annotator's logic against a scripted Argilla HTTP API (the real server is used
in tests/integration/argilla)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from connectors.argilla.oracle import Gold, Oracle
from loop.ids import content_id
from loop.messages import Document


class FakeArgilla:
    """Two datasets, one of them not alloop's; records pending until answered."""

    def __init__(self, records: list[dict[str, Any]], question: str = "label_selection") -> None:
        self.pending = {r["id"]: r for r in records}
        self.answers: list[tuple[str, dict[str, Any]]] = []
        self.question = question

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/v1/me/datasets":
            items = [{"id": "ds1", "name": "alloop-classification"}, {"id": "ds2", "name": "other"}]
            return httpx.Response(200, json={"items": items})
        if path == "/api/v1/datasets/ds1/questions":
            question = {"name": "label", "settings": {"type": self.question}}
            return httpx.Response(200, json={"items": [question]})
        if path == "/api/v1/me/datasets/ds1/records/search":
            offset = int(request.url.params["offset"])
            limit = int(request.url.params["limit"])
            page = list(self.pending.values())[offset : offset + limit]
            return httpx.Response(200, json={"items": [{"record": r} for r in page], "total": 0})
        if path.startswith("/api/v1/records/") and path.endswith("/responses"):
            record_id = path.split("/")[4]
            if record_id == "r-locked":
                return httpx.Response(422, json={"detail": "record is completed"})
            self.answers.append((record_id, json.loads(request.content)))
            self.pending.pop(record_id)
            return httpx.Response(201, json={})
        return httpx.Response(404, json={"detail": f"unexpected {path}"})


def record(rid: str, external_id: str | None, text: str) -> dict[str, Any]:
    return {"id": rid, "external_id": external_id, "fields": {"text": text}}


def oracle_for(fake: FakeArgilla, gold: Gold, **kwargs: Any) -> Oracle:
    client = httpx.Client(base_url="http://argilla", transport=httpx.MockTransport(fake))
    return Oracle("http://argilla", "key", gold, client=client, **kwargs)


GOLD = Gold(
    [
        Document(id="d1", text="shares soar", label="Bullish"),
        Document(id="d2", text="stocks crash", label="Bearish"),
    ]
)


def test_pending_records_get_their_gold_label_by_id_or_by_text() -> None:
    fake = FakeArgilla(
        [
            record("r1", "d1", "shares soar"),
            record("r2", content_id("stocks crash"), "stocks crash"),  # id = content hash
            record("r3", "zzz", "never seen"),
        ]
    )
    tally = oracle_for(fake, GOLD).run()
    assert tally.submitted == 2 and tally.unknown == 1 and tally.failed == 0
    assert fake.answers == [
        ("r1", {"values": {"label": {"value": "Bullish"}}, "status": "submitted"}),
        ("r2", {"values": {"label": {"value": "Bearish"}}, "status": "submitted"}),
    ]
    assert list(fake.pending) == ["r3"]  # left for people


def test_limit_rate_and_refused_answers() -> None:
    fake = FakeArgilla(
        [record("r-locked", "d1", "x"), record("r1", "d1", "x"), record("r2", "d2", "y")]
    )
    slept: list[float] = []
    tally = oracle_for(fake, GOLD, rate=4, sleep=slept.append).run(limit=1)
    assert (tally.submitted, tally.failed) == (1, 1)
    assert slept == [0.25]
    assert list(fake.pending) == ["r-locked", "r2"]
