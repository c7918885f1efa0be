"""Answers Argilla reports that alloop cannot use are refused one by one, never a crash."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.argilla.answers import label_event, poll
from loop.errors import InputError


def entity_record(**extra: Any) -> dict[str, Any]:
    return {
        "id": "rec-1",
        "external_id": "doc-1",
        "fields": {"text": "AUDJPY breaks out"},
        "metadata": {"task": "entities", "reason": "unseen"},
        **extra,
    }


def event(status: str, values: Any, record: dict[str, Any] | None = None) -> Any:
    return label_event(
        response_id="resp-1",
        status=status,
        values=values,
        record=record or entity_record(),
        dataset_name="alloop-entities",
        annotator="ann",
        updated_at="2026-11-24T10:00:00",
        prefix="alloop",
        entity_tasks=("entities",),
    )


@pytest.mark.parametrize("values", [None, {}, {"spans": None}])
def test_an_entity_answer_discarded_without_spans_is_a_discarded_event(values: Any) -> None:
    answer = event("discarded", values)
    assert (answer.status, answer.task, answer.spans) == ("discarded", "entities", None)


def test_a_submitted_entity_answer_without_spans_has_none() -> None:
    answer = event("submitted", {})
    assert answer.status == "submitted" and answer.spans == []


@pytest.mark.parametrize(
    ("values", "updated_at", "needle"),
    [
        (["not", "a", "mapping"], "2026-11-24T10:00:00", "values"),
        ({"spans": "everything"}, "2026-11-24T10:00:00", "spans"),
        ({"spans": {"value": []}}, "yesterday", "labelled_at"),
    ],
)
def test_an_unreadable_answer_is_an_input_error(values: Any, updated_at: str, needle: str) -> None:
    with pytest.raises(InputError, match=needle):
        label_event(
            response_id="resp-1",
            status="submitted",
            values=values,
            record=entity_record(),
            dataset_name="alloop-entities",
            annotator="ann",
            updated_at=updated_at,
            prefix="alloop",
            entity_tasks=("entities",),
        )


class FakeArgilla:
    """Answers the two requests :func:`poll` makes."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records

    def get(self, path: str) -> Any:
        return Answer({"items": [{"id": "ds-1", "name": "alloop-entities"}]})

    def post(self, path: str, params: dict[str, Any], json: Any) -> Any:
        offset = params["offset"]
        return Answer({"items": [{"record": r} for r in self.records[offset:]]})


class Answer:
    def __init__(self, body: Any) -> None:
        self.body = body

    def raise_for_status(self) -> Answer:
        return self

    def json(self) -> Any:
        return self.body


def response(rid: str, status: str, values: Any, updated_at: str = "2026-11-24T10:00:00") -> Any:
    return {"id": rid, "status": status, "values": values, "user_id": "u", "updated_at": updated_at}


def test_the_poll_skips_an_unreadable_answer_and_relays_the_others() -> None:
    records = [
        entity_record(responses=[response("r1", "discarded", None)]),
        entity_record(id="rec-2", responses=[response("r2", "submitted", {"spans": "bad"})]),
        entity_record(
            id="rec-3", responses=[response("r3", "submitted", {"spans": {"value": []}})]
        ),
    ]
    events = poll(FakeArgilla(records), "alloop", entity_tasks=("entities",))
    assert [(e.response_id, e.status) for e in events] == [("r1", "discarded"), ("r3", "submitted")]
