"""Argilla's queue of a dataset: how to reach the server, and the records nobody has completed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

PENDING_RECORDS = {
    "and": [
        {
            "type": "terms",
            "scope": {"entity": "record", "property": "status"},
            "values": ["pending"],
        }
    ]
}
"""The search filter of the records that still wait for an answer."""

PAGE = 500


def pending_records(http: httpx.Client, dataset_id: Any) -> Iterator[dict[str, Any]]:
    """Every pending record of the dataset with its responses, page by page."""
    offset = 0
    while True:
        page = http.post(
            f"/api/v1/datasets/{dataset_id}/records/search",
            params={"offset": offset, "limit": PAGE, "include": "responses"},
            json={"filters": PENDING_RECORDS},
        )
        page.raise_for_status()
        records = [item["record"] for item in page.json()["items"]]
        yield from records
        offset += len(records)
        if len(records) < PAGE:
            return


def find_dataset(http: httpx.Client, dataset_name: str) -> dict[str, Any] | None:
    """The dataset named ``dataset_name`` as Argilla lists it (None when it does not exist)."""
    datasets = http.get("/api/v1/me/datasets").raise_for_status().json()["items"]
    return next((d for d in datasets if d["name"] == dataset_name), None)


def pending_in(http: httpx.Client, dataset_id: Any) -> int:
    """How many records of the dataset wait for an answer."""
    page = http.post(
        f"/api/v1/datasets/{dataset_id}/records/search",
        params={"limit": 1},
        json={"filters": PENDING_RECORDS},
    ).raise_for_status()
    return int(page.json()["total"])


def pending_total(http: httpx.Client, dataset_name: str) -> int:
    """How many records of the dataset named ``dataset_name`` wait for an answer (0 when the
    dataset does not exist yet)."""
    found = find_dataset(http, dataset_name)
    return 0 if found is None else pending_in(http, found["id"])


def annotation_url(argilla_url: str, dataset_id: Any) -> str:
    """Where annotators answer the dataset's records in Argilla's UI."""
    return f"{argilla_url.rstrip('/')}/dataset/{dataset_id}/annotation-mode"
