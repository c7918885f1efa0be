"""How fast the SQL search engine answers Argilla's requests as a dataset grows.

Starts a private local Argilla (the same as ``alloop stack up``), fills one dataset per size
with records like the labeler's (text, selection metadata, a suggestion, a 384-d vector) and
times, through Argilla's HTTP API, the requests the UI and alloop make most: a page of the
dataset, a text query, a metadata filter, the annotator's pending queue, sorting by score,
dataset progress, the annotator's progress and "find similar". Each figure is the median of
``repeats`` requests after one warm-up request, in milliseconds. The last line printed is a
JSON object with every figure.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

WORDS = [
    "stocks",
    "rally",
    "crash",
    "earnings",
    "guidance",
    "bitcoin",
    "dollar",
    "yen",
    "fed",
    "rates",
    "inflation",
    "merger",
    "shares",
    "bonds",
    "oil",
    "gold",
    "outlook",
    "upgrade",
    "downgrade",
    "dividend",
    "buyback",
    "revenue",
    "profit",
    "loss",
]


def _records(count: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(count, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    items = []
    for i in range(count):
        text = " ".join(rng.choice(WORDS, size=12))
        items.append(
            {
                "external_id": f"doc-{i}",
                "fields": {"text": text},
                "metadata": {
                    "score": float(rng.random()),
                    "reason": "random" if i % 10 == 0 else "uncertain",
                },
                "suggestions": [
                    {
                        "question_id": None,
                        "value": ["up", "down", "flat"][i % 3],
                        "score": float(rng.random()),
                        "agent": "v0001",
                    }
                ],
                "vectors": {"embedding": [round(float(x), 5) for x in vectors[i]]},
            }
        )
    return items


def _dataset(url: str, key: str, name: str) -> tuple[str, str]:
    """Create and publish a dataset like the labeler's; return (dataset id, question id)."""
    import argilla as rg

    client = rg.Argilla(api_url=url, api_key=key)
    settings = rg.Settings(
        fields=[rg.TextField(name="text")],
        questions=[rg.LabelQuestion(name="label", labels=["up", "down", "flat"])],
        metadata=[rg.FloatMetadataProperty(name="score"), rg.TermsMetadataProperty(name="reason")],
        vectors=[rg.VectorField(name="embedding", dimensions=384)],
    )
    dataset = rg.Dataset(name=name, workspace="alloop", settings=settings, client=client).create()
    return str(dataset.id), str(dataset.settings.questions["label"].id)


def _fill(http: httpx.Client, dataset: str, question: str, records: list[dict[str, Any]]) -> float:
    started = time.monotonic()
    for start in range(0, len(records), 500):
        chunk = records[start : start + 500]
        for item in chunk:
            item["suggestions"][0]["question_id"] = question
        http.put(
            f"/api/v1/datasets/{dataset}/records/bulk", json={"items": chunk}, timeout=300
        ).raise_for_status()
    return time.monotonic() - started


def _time(call: Callable[[], httpx.Response], repeats: int) -> float:
    call().raise_for_status()  # warm-up: caches, connections
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        call().raise_for_status()
        samples.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(samples), 1)


def measure(
    owner: httpx.Client, annotator: httpx.Client, dataset: str, repeats: int
) -> dict[str, float]:
    search = f"/api/v1/datasets/{dataset}/records/search"
    mine = f"/api/v1/me/datasets/{dataset}/records/search"
    page = {"limit": 50}
    pending = {
        "and": [
            {
                "type": "terms",
                "scope": {"entity": "response", "property": "status"},
                "values": ["pending"],
            }
        ]
    }
    some_record = owner.post(search, params={"limit": 1}, json={}).json()["items"][0]["record"][
        "id"
    ]
    return {
        "page": _time(lambda: owner.post(search, params=page, json={}), repeats),
        "text_query": _time(
            lambda: owner.post(
                search, params=page, json={"query": {"text": {"q": "bitcoin rally -crash"}}}
            ),
            repeats,
        ),
        "metadata_filter": _time(
            lambda: owner.post(
                search,
                params=page,
                json={
                    "filters": {
                        "and": [
                            {
                                "type": "range",
                                "scope": {"entity": "metadata", "metadata_property": "score"},
                                "ge": 0.5,
                            }
                        ]
                    }
                },
            ),
            repeats,
        ),
        "sort_by_score": _time(
            lambda: owner.post(
                search,
                params=page,
                json={
                    "sort": [
                        {
                            "scope": {"entity": "metadata", "metadata_property": "score"},
                            "order": "desc",
                        }
                    ]
                },
            ),
            repeats,
        ),
        "annotator_queue": _time(
            lambda: annotator.post(mine, params=page, json={"filters": pending}), repeats
        ),
        "dataset_progress": _time(
            lambda: owner.get(f"/api/v1/datasets/{dataset}/progress"), repeats
        ),
        "annotator_progress": _time(
            lambda: annotator.get(f"/api/v1/me/datasets/{dataset}/metrics"), repeats
        ),
        "find_similar": _time(
            lambda: owner.post(
                search,
                params=page,
                json={"query": {"vector": {"name": "embedding", "record_id": some_record}}},
            ),
            repeats,
        ),
    }


def run(
    sizes: Sequence[int] = (1000, 10000), repeats: int = 7, venv: Path | None = None
) -> dict[str, Any]:
    from connectors.argilla.setup import ensure_workspace
    from stack import argilla as argilla_local
    from stack.local import stop_service

    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="alloop-bench-argilla-") as scratch:
        print("starting a local Argilla ...", file=sys.stderr, flush=True)
        local = argilla_local.start(Path(scratch), venv or root / ".venv-argilla")
        creds = local.credentials
        owner = httpx.Client(
            base_url=local.url, headers={"X-Argilla-Api-Key": creds.owner_api_key}, timeout=120
        )
        annotator = httpx.Client(
            base_url=local.url, headers={"X-Argilla-Api-Key": creds.annotator_api_key}, timeout=120
        )
        try:
            ensure_workspace(owner, "alloop")
            results: dict[str, Any] = {}
            for size in sizes:
                name = f"bench-{size}-{uuid.uuid4().hex[:6]}"
                dataset, question = _dataset(local.url, creds.owner_api_key, name)
                print(f"indexing {size} records ...", file=sys.stderr, flush=True)
                seconds = _fill(owner, dataset, question, _records(size))
                figures = measure(owner, annotator, dataset, repeats)
                results[str(size)] = {"index_seconds": round(seconds, 1), **figures}
                print(
                    f"{size:>6} records: " + ", ".join(f"{k} {v} ms" for k, v in figures.items()),
                    file=sys.stderr,
                )
        finally:
            owner.close()
            annotator.close()
            for service in reversed(local.services):
                stop_service(service)
    return {"sizes": list(sizes), "repeats": repeats, "ms": results}


def report(result: dict[str, Any]) -> str:
    sizes = [str(s) for s in result["sizes"]]
    names = [k for k in result["ms"][sizes[0]] if k != "index_seconds"]
    lines = [f"{'request (median ms)':22}" + "".join(f"{s + ' records':>16}" for s in sizes)]
    for name in names:
        lines.append(f"{name:22}" + "".join(f"{result['ms'][s][name]:>16}" for s in sizes))
    lines.append(
        f"{'indexing (s)':22}" + "".join(f"{result['ms'][s]['index_seconds']:>16}" for s in sizes)
    )
    return "\n".join(lines)


def main() -> None:
    result = run()
    print(report(result))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
