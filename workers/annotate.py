"""An oracle annotator: answers Argilla's pending records with gold labels, as a person would.

It signs in with the annotator account's API key and uses only Argilla's HTTP API, the way
the Argilla UI does: list the datasets it may work on, search its own queue for records still
pending for it, and submit a response with the gold label of each record it finds in the gold
file (matched by document id, else by the text's content id). Records it has no gold label for
are left for people. It is for tests, demos and benchmarks: the loop cannot tell it from a
person.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from loop.ids import content_id
from loop.messages import Document
from workers.argilla_labels import LABEL_QUESTION, TEXT_FIELD

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


class Gold:
    """Gold labels by document id and by content id of the text."""

    def __init__(self, documents: Iterable[Document]) -> None:
        self.by_id: dict[str, str] = {}
        self.by_text: dict[str, str] = {}
        for doc in documents:
            if doc.label is None:
                continue
            self.by_id[doc.id] = doc.label
            self.by_text[content_id(doc.text)] = doc.label

    def __len__(self) -> int:
        return len(self.by_id)

    def label_of(self, external_id: str | None, text: str) -> str | None:
        if external_id and external_id in self.by_id:
            return self.by_id[external_id]
        return self.by_text.get(content_id(text))


@dataclass
class Tally:
    """What one pass did."""

    submitted: int = 0
    unknown: int = 0
    failed: int = 0
    by_label: dict[str, int] = field(default_factory=dict)


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
    ) -> None:
        self.gold = gold
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
        """The annotator's datasets that belong to alloop."""
        items = self._json("GET", "/api/v1/me/datasets")["items"]
        return [d for d in items if str(d["name"]).startswith(f"{self.prefix}-")]

    def pending(self, dataset_id: str, skip: set[str]) -> list[dict[str, Any]]:
        """One page of records pending for this annotator (minus those it cannot answer)."""
        body = {"filters": PENDING_FOR_ME}
        found: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self._json(
                "POST",
                f"/api/v1/me/datasets/{dataset_id}/records/search",
                params={"offset": offset, "limit": PAGE},
                json=body,
            )
            records = [item["record"] for item in page["items"]]
            found.extend(r for r in records if str(r["id"]) not in skip)
            offset += len(records)
            if found or len(records) < PAGE:
                return found

    def answer(self, record: dict[str, Any], label: str) -> None:
        self._json(
            "POST",
            f"/api/v1/records/{record['id']}/responses",
            json={"values": {LABEL_QUESTION: {"value": label}}, "status": "submitted"},
        )

    def run(self, limit: int | None = None, on_answer: Callable[[], None] | None = None) -> Tally:
        """Answer what is pending now, until nothing is left or ``limit`` answers were given."""
        tally = Tally()
        skip: set[str] = set()
        for dataset in self.datasets():
            while limit is None or tally.submitted < limit:
                records = self.pending(str(dataset["id"]), skip)
                if not records:
                    break
                for record in records:
                    if limit is not None and tally.submitted >= limit:
                        break
                    skip.add(str(record["id"]))
                    text = str(record.get("fields", {}).get(TEXT_FIELD, ""))
                    label = self.gold.label_of(record.get("external_id"), text)
                    if label is None:
                        tally.unknown += 1
                        continue
                    try:
                        self.answer(record, label)
                    except httpx.HTTPStatusError as exc:
                        tally.failed += 1
                        logger.warning(
                            "could not answer record %s: %s %s",
                            record["id"],
                            exc.response.status_code,
                            exc.response.text[:200],
                        )
                        continue
                    tally.submitted += 1
                    tally.by_label[label] = tally.by_label.get(label, 0) + 1
                    if on_answer is not None:
                        on_answer()
                    if self.rate > 0:
                        self._sleep(1.0 / self.rate)
        return tally
