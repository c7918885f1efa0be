"""From Argilla's answers to label events.

Argilla reports an answer in two shapes: the ``response.*`` webhook payload and, when polled,
a record with its responses. Both come down to the same facts (who answered which record,
how, when) and the same :class:`~loop.messages.LabelEvent`, keyed by the response id so that
seeing an answer twice changes nothing.

Conventions of alloop's Argilla datasets (the labeler creates them): the record's
``external_id`` is the document id, its field ``text`` holds the text, the question ``label``
holds the class (classification datasets; a list of classes when the question is
multi-label) or the span question ``spans`` the entities (entity datasets; each span is
checked against the text, see :mod:`loop.entities.answers`), and the metadata ``task``,
``reason`` and ``model_version`` say which task it belongs to, why it was selected and which
version made the suggestion.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from loop.entities.answers import check_answer
from loop.errors import InputError
from loop.messages import EntityMention, LabelEvent

logger = logging.getLogger(__name__)

LABEL_QUESTION = "label"
SPAN_QUESTION = "spans"
TEXT_FIELD = "text"
ANSWER_EVENTS = frozenset({"response.created", "response.updated"})
# Argilla's response statuses: a draft is work in progress, not an answer.
COUNTED = frozenset({"submitted", "discarded"})


def _get(mapping: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(mapping, dict) or key not in mapping:
            raise InputError(f"the payload has no {'.'.join(path)}")
        mapping = mapping[key]
    return mapping


def task_of(dataset_name: str, metadata: dict[str, Any] | None, prefix: str) -> str:
    """The task a record belongs to: its ``task`` metadata, else its dataset's name."""
    if metadata and isinstance(metadata.get("task"), str):
        return str(metadata["task"])
    return dataset_name.removeprefix(f"{prefix}-")


def label_event(
    *,
    response_id: str,
    status: str,
    values: dict[str, Any] | None,
    record: dict[str, Any],
    dataset_name: str,
    annotator: str | None,
    updated_at: str | datetime,
    prefix: str,
    entity_tasks: Collection[str] = (),
) -> LabelEvent | None:
    """The label event for one answer, or None for a draft. Raises InputError when the
    record is not one of alloop's (no document id, no text) or the answer is unreadable."""
    if status not in COUNTED:
        return None
    doc_id = record.get("external_id")
    if not doc_id:
        raise InputError(f"record {record.get('id')} has no external_id: not an alloop record")
    text = _get(record, "fields", TEXT_FIELD)
    metadata = record.get("metadata") or {}
    label: str | None = None
    labels: list[str] | None = None
    spans: list[EntityMention] | None = None
    rejected: list[str] = []
    answers = values or {}
    if not isinstance(answers, dict):
        raise InputError(f"response {response_id}: its values are not a mapping: {answers!r}")
    task = task_of(dataset_name, metadata, prefix)
    if SPAN_QUESTION in answers or task in entity_tasks:  # an entity dataset
        if status == "submitted":  # a discarded answer may carry no spans at all
            value = _answer(answers, SPAN_QUESTION, response_id)
            spans, rejected = check_answer(str(text), value)
    elif status == "submitted":
        value = _answer(answers, LABEL_QUESTION, response_id)
        if isinstance(value, list):  # a multi-label question: the labels that apply
            if not all(isinstance(v, str) and v for v in value):
                raise InputError(
                    f"response {response_id} on document {doc_id}: the '{LABEL_QUESTION}' "
                    f"labels must be non-empty strings (got {value!r})"
                )
            labels = [str(v) for v in value]
        elif isinstance(value, str) and value:
            label = value
        else:
            raise InputError(
                f"response {response_id} on document {doc_id} has no '{LABEL_QUESTION}' value "
                f"(got {value!r})"
            )
    try:
        return LabelEvent(
            id=str(doc_id),
            text=str(text),
            task=task,
            label=label,
            labels=labels,
            spans=spans,
            rejected=rejected,
            status="submitted" if status == "submitted" else "discarded",
            response_id=str(response_id),
            annotator=annotator,
            origin=metadata.get("reason"),
            model_version=metadata.get("model_version"),
            labelled_at=updated_at,  # type: ignore[arg-type]
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise InputError(
            f"response {response_id} on document {doc_id} is not a valid answer: {problems}"
        ) from exc


def _answer(answers: dict[str, Any], question: str, response_id: str) -> Any:
    """The value given to ``question`` (None when it was not answered)."""
    answer = answers.get(question)
    if answer is None:
        return None
    if not isinstance(answer, dict):
        raise InputError(
            f"response {response_id}: the '{question}' answer is not an object with a value: "
            f"{answer!r}"
        )
    return answer.get("value")


def from_webhook(
    payload: dict[str, Any], prefix: str, entity_tasks: Collection[str] = ()
) -> LabelEvent | None:
    """The label event in a webhook delivery, or None when it carries no answer.

    ``response.created`` / ``response.updated`` carry one answer. ``record.completed`` only
    says that a record has all the answers it needs; the label store resolves agreement from
    the answers themselves, so it needs nothing from this event.
    """
    event = payload.get("type")
    if event not in ANSWER_EVENTS:
        return None
    data = _get(payload, "data")
    record = _get(data, "record")
    if not str(_get(record, "dataset", "name")).startswith(f"{prefix}-"):
        return None  # another application's dataset on the same Argilla
    return label_event(
        response_id=str(_get(data, "id")),
        status=str(_get(data, "status")),
        values=data.get("values"),
        record=record,
        dataset_name=str(_get(record, "dataset", "name")),
        annotator=(data.get("user") or {}).get("username"),
        updated_at=_get(data, "updated_at"),
        prefix=prefix,
        entity_tasks=entity_tasks,
    )


ANSWERED = {
    "and": [
        {
            "type": "terms",
            "scope": {"entity": "response", "property": "status"},
            "values": sorted(COUNTED),
        }
    ]
}


def poll(
    http: Any,
    prefix: str,
    workspace_id: str | None = None,
    page: int = 200,
    entity_tasks: Collection[str] = (),
) -> list[LabelEvent]:
    """Every submitted or discarded answer in alloop's datasets, read through Argilla's HTTP
    API (``http`` is an ``httpx.Client`` with the owner's key). The catch-up for deliveries
    the API missed; answers seen before are no-ops in the label store."""
    events: list[LabelEvent] = []
    datasets = http.get("/api/v1/me/datasets").raise_for_status().json()["items"]
    for dataset in datasets:
        name = str(dataset["name"])
        if not name.startswith(f"{prefix}-"):
            continue
        if workspace_id is not None and str(dataset.get("workspace_id")) != workspace_id:
            continue
        offset = 0
        while True:
            found = (
                http.post(
                    f"/api/v1/datasets/{dataset['id']}/records/search",
                    params={"offset": offset, "limit": page, "include": "responses"},
                    json={"filters": ANSWERED},
                )
                .raise_for_status()
                .json()
            )
            records = [item["record"] for item in found["items"]]
            for record in records:
                for response in record.get("responses") or []:
                    try:
                        event = label_event(
                            response_id=str(response["id"]),
                            status=str(response["status"]),
                            values=response.get("values"),
                            record=record,
                            dataset_name=name,
                            annotator=str(response.get("user_id")),
                            updated_at=response["updated_at"],
                            prefix=prefix,
                            entity_tasks=entity_tasks,
                        )
                    except (InputError, KeyError, TypeError, AttributeError) as exc:
                        # one answer alloop cannot read must not stop the others
                        logger.warning(
                            "answers poll: skipped a response on record %s of %s: %s",
                            record.get("id"),
                            name,
                            exc,
                        )
                        continue
                    if event is not None:
                        events.append(event)
            offset += len(records)
            if len(records) < page:
                break
    return events
