"""An oracle annotator: answers Argilla's pending records with gold labels, as a person would.

It signs in with the annotator account's API key and uses only Argilla's HTTP API, the way
the Argilla UI does: list the datasets it may work on, search its own queue for records still
pending for it, and submit a response with the gold label of each record it finds in the gold
file (matched by document id, else by the text's content id). A gold document with a label set
(``labels``) answers a multi-label question with that set; an empty set is discarded, as an
annotator discards a text that no label fits (Argilla's question needs at least one label).
In entity datasets it submits the gold spans instead, read from each gold document's
``metadata.entities`` (a list of ``{"label", "start", "end"}``; an empty list means the text
has none). Records it has no gold answer for are left for people, unless
``accept_suggestions`` is set: then an entity record with no gold spans is answered with its
suggested spans, the way a person accepts correct pre-annotations (the demo uses this, as the
tweets have no gold entities). It is for tests, demos and benchmarks: the loop cannot tell it
from a person.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from connectors.argilla.answers import LABEL_QUESTION, SPAN_QUESTION, TEXT_FIELD
from loop.ids import content_id
from loop.messages import Document

logger = logging.getLogger(__name__)

PAGE = 50
PENDING_FOR_ME = {
    "and": [
        {
            "type": "terms",
            "scope": {"entity": "response", "property": "status"},
            "values": ["pending"],
        }
    ]
}


Spans = list[dict[str, Any]]
Answer = str | list[str]
"""A gold class, or the gold classes of a multi-label document."""


class Gold:
    """Gold labels and gold entity spans, by document id and by content id of the text."""

    def __init__(self, documents: Iterable[Document]) -> None:
        self.by_id: dict[str, Answer] = {}
        self.by_text: dict[str, Answer] = {}
        self.spans_by_id: dict[str, Spans] = {}
        self.spans_by_text: dict[str, Spans] = {}
        for doc in documents:
            entities = doc.metadata.get("entities")
            if isinstance(entities, list):
                spans = [
                    {"label": str(e["label"]), "start": int(e["start"]), "end": int(e["end"])}
                    for e in entities
                ]
                self.spans_by_id[doc.id] = spans
                self.spans_by_text[content_id(doc.text)] = spans
            answer: Answer | None = sorted(doc.labels) if doc.labels is not None else doc.label
            if answer is None:
                continue
            self.by_id[doc.id] = answer
            self.by_text[content_id(doc.text)] = answer

    def __len__(self) -> int:
        return max(len(self.by_id), len(self.spans_by_id))

    def label_of(self, external_id: str | None, text: str) -> Answer | None:
        """The gold label, or the gold label set of a multi-label document."""
        if external_id and external_id in self.by_id:
            return self.by_id[external_id]
        return self.by_text.get(content_id(text))

    def spans_of(self, external_id: str | None, text: str) -> Spans | None:
        if external_id and external_id in self.spans_by_id:
            return self.spans_by_id[external_id]
        return self.spans_by_text.get(content_id(text))


@dataclass
class Tally:
    """What one pass did."""

    submitted: int = 0
    discarded: int = 0
    unknown: int = 0
    failed: int = 0
    by_label: dict[str, int] = field(default_factory=dict)


def fit_question(answer: Answer | Spans | None, kind: str) -> Answer | Spans | None:
    """A gold answer in the shape the question takes: a single label becomes a set of one for
    a multi-label question; a set answers a single-label question only when it has one label
    (else there is no gold answer for it)."""
    if kind == "multi_label" and isinstance(answer, str):
        return [answer]
    if kind == "label" and isinstance(answer, list):
        return str(answer[0]) if len(answer) == 1 else None
    return answer


def suggested_spans(record: dict[str, Any]) -> Spans:
    """The spans suggested on a record's span question (none: an empty answer). Entity
    datasets have one question, so the suggestion whose value is a list is the span one."""
    for suggestion in record.get("suggestions") or []:
        value = suggestion.get("value")
        if isinstance(value, list):
            return [
                {"label": str(v["label"]), "start": int(v["start"]), "end": int(v["end"])}
                for v in value
            ]
    return []


class Oracle:
    """Answers pending records in the datasets whose name starts with ``prefix``."""

    def __init__(
        self,
        url: str,
        api_key: str,
        gold: Gold,
        *,
        prefix: str = "alloop",
        rate: float = 0.0,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        accept_suggestions: bool = False,
        task: str | None = None,
        reason: str | None = None,
    ) -> None:
        self.gold = gold
        self.accept_suggestions = accept_suggestions
        self.task = task
        self.reason = reason
        self.prefix = prefix
        self.rate = rate
        self._sleep = sleep
        self._http = client or httpx.Client(
            base_url=url.rstrip("/"), headers={"X-Argilla-Api-Key": api_key}, timeout=30
        )

    def close(self) -> None:
        self._http.close()

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = self._http.request(method, path, **kwargs)
        answer.raise_for_status()
        return answer.json()

    def datasets(self) -> list[dict[str, Any]]:
        """The annotator's datasets that belong to alloop (only the task's, if one is set)."""
        items = self._json("GET", "/api/v1/me/datasets")["items"]
        if self.task is not None:
            return [d for d in items if d["name"] == f"{self.prefix}-{self.task}"]
        return [d for d in items if str(d["name"]).startswith(f"{self.prefix}-")]

    def pending(self, dataset_id: str, skip: set[str]) -> list[dict[str, Any]]:
        """One page of records pending for this annotator (minus those it cannot answer), of
        the chosen selection reason only, if one is set."""
        body: dict[str, Any] = {"filters": PENDING_FOR_ME}
        if self.reason is not None:
            by_reason = {
                "type": "terms",
                "scope": {"entity": "metadata", "metadata_property": "reason"},
                "values": [self.reason],
            }
            body = {"filters": {"and": [*PENDING_FOR_ME["and"], by_reason]}}
        found: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self._json(
                "POST",
                f"/api/v1/me/datasets/{dataset_id}/records/search",
                params={"offset": offset, "limit": PAGE, "include": "suggestions"},
                json=body,
            )
            records = [item["record"] for item in page["items"]]
            found.extend(r for r in records if str(r["id"]) not in skip)
            offset += len(records)
            if found or len(records) < PAGE:
                return found

    def answer(self, record: dict[str, Any], question: str, value: Answer | Spans) -> None:
        """Submit a class or a list of classes (the label question) or a list of spans (the
        span question); an empty list of classes discards the record."""
        body: dict[str, Any] = {"values": {question: {"value": value}}, "status": "submitted"}
        if question == LABEL_QUESTION and value == []:
            body = {"status": "discarded"}
        self._json("POST", f"/api/v1/records/{record['id']}/responses", json=body)

    def question_kind(self, dataset_id: str) -> str:
        """``spans`` (alloop's span question), ``multi_label`` (a multi-label question) or
        ``label``."""
        questions = self._json("GET", f"/api/v1/datasets/{dataset_id}/questions")["items"]
        if any(q["name"] == SPAN_QUESTION for q in questions):
            return "spans"
        kinds = {(q.get("settings") or {}).get("type") for q in questions}
        return "multi_label" if "multi_label_selection" in kinds else "label"

    def run(self, limit: int | None = None, on_answer: Callable[[], None] | None = None) -> Tally:
        """Answer what is pending now, until nothing is left or ``limit`` answers were given."""
        tally = Tally()
        skip: set[str] = set()
        for dataset in self.datasets():
            kind = self.question_kind(str(dataset["id"]))
            spans = kind == "spans"
            while limit is None or tally.submitted < limit:
                records = self.pending(str(dataset["id"]), skip)
                if not records:
                    break
                for record in records:
                    if limit is not None and tally.submitted >= limit:
                        break
                    skip.add(str(record["id"]))
                    text = str(record.get("fields", {}).get(TEXT_FIELD, ""))
                    external_id = record.get("external_id")
                    label: Answer | Spans | None = (
                        self.gold.spans_of(external_id, text)
                        if spans
                        else self.gold.label_of(external_id, text)
                    )
                    if label is None and spans and self.accept_suggestions:
                        label = suggested_spans(record)
                    label = fit_question(label, kind)
                    if label is None:
                        tally.unknown += 1
                        continue
                    question = SPAN_QUESTION if spans else LABEL_QUESTION
                    try:
                        self.answer(record, question, label)
                    except httpx.HTTPStatusError as exc:
                        tally.failed += 1
                        logger.warning(
                            "could not answer record %s: %s %s",
                            record["id"],
                            exc.response.status_code,
                            exc.response.text[:200],
                        )
                        continue
                    if label == [] and not spans:
                        tally.discarded += 1
                    else:
                        tally.submitted += 1
                    names = ["entities"] if spans else [label] if isinstance(label, str) else label
                    for name in names:
                        tally.by_label[str(name)] = tally.by_label.get(str(name), 0) + 1
                    if on_answer is not None:
                        on_answer()
                    if self.rate > 0:
                        self._sleep(1.0 / self.rate)
        return tally
