"""alloop's SQL search engine behind a real argilla-server 2.8.0, driven through the argilla SDK
and Argilla's HTTP API, on SQLite and on PostgreSQL.

Each expectation is what argilla-server's Elasticsearch engine returns for the same request,
read from its code (``argilla_server/search_engine/commons.py``): ``simple_query_string`` with
AND as the default operator over the text fields; ``terms`` and ``range`` filters; ``pending``
meaning "no response" (of that user, on the annotator's own queue); missing values sorted last;
progress as terms counts of the record status and of the user's response statuses; metadata
metrics as terms counts and min/max; similarity as kNN by cosine, the record itself excluded.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import argilla as rg
import httpx
import pytest

from stack.argilla import LocalArgilla

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TEXTS = {
    "r0": "The quick brown fox jumps",
    "r1": "Stock markets crash hard",
    "r2": "Bitcoin rally continues",
    "r3": "Quick rally in brown shares",
    "r4": "A calm day",
    "r5": "foxes and hounds",
}
METADATA: dict[str, dict[str, Any]] = {
    "r0": {"genre": "animals", "price": 1.0, "year": 2001},
    "r1": {"genre": "finance", "price": 5.5, "year": 2005},
    "r2": {"genre": "finance", "price": 10.0, "year": 2010},
    "r3": {"genre": "finance", "year": 2003},
    "r4": {},
    "r5": {"genre": "animals", "price": 2.0},
}
SUGGESTIONS = {
    "r0": ("up", 0.9, "m1"),
    "r1": ("down", 0.4, "m1"),
    "r2": ("up", 0.7, "m2"),
    "r3": ("up", 0.2, "m2"),
}
VECTORS = {
    "r0": [1.0, 0.0, 0.0],
    "r1": [0.0, 1.0, 0.0],
    "r2": [0.9, 0.1, 0.0],
    "r3": [0.0, 0.0, 1.0],
}


class World:
    """One dataset with the records above and answers from the owner and the annotator."""

    def __init__(self, local: LocalArgilla) -> None:
        creds = local.credentials
        self.url = local.url
        self.owner = rg.Argilla(api_url=local.url, api_key=creds.owner_api_key)
        self.owner_http = httpx.Client(
            base_url=local.url, headers={"X-Argilla-Api-Key": creds.owner_api_key}
        )
        self.annotator_http = httpx.Client(
            base_url=local.url, headers={"X-Argilla-Api-Key": creds.annotator_api_key}
        )
        settings = rg.Settings(
            fields=[rg.TextField(name="text")],
            questions=[rg.LabelQuestion(name="label", labels=["up", "down"])],
            metadata=[
                rg.TermsMetadataProperty(name="genre"),
                rg.FloatMetadataProperty(name="price"),
                rg.IntegerMetadataProperty(name="year"),
            ],
            vectors=[rg.VectorField(name="embedding", dimensions=3)],
            distribution=rg.TaskDistribution(min_submitted=1),
        )
        self.name = f"search-{uuid.uuid4().hex[:8]}"
        self.dataset = rg.Dataset(
            name=self.name, workspace="alloop", settings=settings, client=self.owner
        ).create()
        records = []
        for key, text in TEXTS.items():
            suggestion = SUGGESTIONS.get(key)
            records.append(
                rg.Record(
                    id=key,
                    fields={"text": text},
                    metadata=METADATA[key] or None,
                    suggestions=[
                        rg.Suggestion(
                            "label", suggestion[0], score=suggestion[1], agent=suggestion[2]
                        )
                    ]
                    if suggestion
                    else [],
                    vectors={"embedding": VECTORS[key]} if key in VECTORS else None,
                )
            )
        self.dataset.records.log(records)
        self.server_ids = {
            r.id: str(r._server_id) for r in self.dataset.records(with_responses=False)
        }
        self.respond(self.owner_http, "r0", "up", "submitted")
        self.respond(self.annotator_http, "r1", "down", "submitted")
        self.respond(self.annotator_http, "r2", "up", "draft")
        self.respond(self.annotator_http, "r3", None, "discarded")

    def respond(self, http: httpx.Client, key: str, label: str | None, status: str) -> None:
        body: dict[str, Any] = {
            "status": status,
            "values": {"label": {"value": label}} if label else None,
        }
        if body["values"] is None:
            del body["values"]
        http.post(f"/api/v1/records/{self.server_ids[key]}/responses", json=body).raise_for_status()

    def ids(self, query: Any = None) -> list[str]:
        # with_responses=False: the SDK 2.8 cannot read a discarded response without values
        return [r.id for r in self.dataset.records(query=query, with_responses=False)]

    def search(
        self, http: httpx.Client | None = None, *, mine: bool = False, **body: Any
    ) -> dict[str, Any]:
        http = http or self.owner_http
        prefix = "/api/v1/me" if mine else "/api/v1"
        params = body.pop("params", {})
        answer = http.post(
            f"{prefix}/datasets/{self.dataset.id}/records/search", json=body, params=params
        )
        answer.raise_for_status()
        return answer.json()

    def keys(self, found: dict[str, Any]) -> list[str]:
        by_server = {v: k for k, v in self.server_ids.items()}
        return [by_server[item["record"]["id"]] for item in found["items"]]


@pytest.fixture(scope="module")
def world(any_argilla: LocalArgilla) -> Iterator[World]:
    made = World(any_argilla)
    yield made
    made.owner_http.close()
    made.annotator_http.close()


def terms(entity: str, values: list[str], **scope: Any) -> dict[str, Any]:
    return {"and": [{"type": "terms", "scope": {"entity": entity, **scope}, "values": values}]}


def test_indexed_records_are_all_found_with_exact_totals_and_pages(world: World) -> None:
    assert sorted(world.ids()) == sorted(TEXTS)
    seen: list[str] = []
    for offset in (0, 2, 4):
        page = world.search(params={"offset": offset, "limit": 2})
        assert page["total"] == 6
        seen += world.keys(page)
    assert sorted(seen) == sorted(TEXTS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("quick brown", {"r0", "r3"}),  # AND by default
        ("quick | crash", {"r0", "r1", "r3"}),
        ('"brown fox"', {"r0"}),  # a phrase: r3 has "brown shares"
        ("quick -fox", {"r3"}),  # negation
        ("fox*", {"r0", "r5"}),  # prefix: fox, foxes
        ("QUICK", {"r0", "r3"}),  # lowercased
        ("nothing-like-this", set()),
    ],
)
def test_the_text_query(world: World, text: str, expected: set[str]) -> None:
    assert set(world.ids(rg.Query(query=text))) == expected
    on_field = world.search(query={"text": {"q": text, "field": "text"}})
    assert set(world.keys(on_field)) == expected and on_field["total"] == len(expected)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (("metadata.genre", "==", "finance"), {"r1", "r2", "r3"}),
        (("metadata.genre", "in", ["animals", "nope"]), {"r0", "r5"}),
        (("metadata.price", ">=", 2.0), {"r1", "r2", "r5"}),
        (("metadata.price", "<=", 5.5), {"r0", "r1", "r5"}),
        (("metadata.year", ">=", 2004), {"r1", "r2"}),
        (("label", "==", "up"), {"r0", "r2", "r3"}),  # suggestion value
        (("label.score", ">=", 0.5), {"r0", "r2"}),
        (("label.agent", "==", "m2"), {"r2", "r3"}),
        (("label.response", "==", "down"), {"r1"}),  # response values, any user
        (("label.response", "==", "up"), {"r0", "r2"}),  # a draft's value counts too
        (("response.status", "in", ["submitted"]), {"r0", "r1"}),
        (("response.status", "in", ["pending"]), {"r4", "r5"}),  # no response at all
        (("response.status", "in", ["pending", "draft"]), {"r2", "r4", "r5"}),
        (
            ("status", "==", "completed"),
            {"r0", "r1"},
        ),  # min_submitted=1; discarded does not complete
        (("status", "==", "pending"), {"r2", "r3", "r4", "r5"}),
        (("id", "in", ["r2", "r4"]), {"r2", "r4"}),  # external id
    ],
)
def test_filters(world: World, condition: tuple[str, str, Any], expected: set[str]) -> None:
    assert set(world.ids(rg.Query(filter=rg.Filter(condition)))) == expected


def test_filters_combine_with_and_and_with_the_text_query(world: World) -> None:
    query = rg.Query(
        query="rally",
        filter=rg.Filter([("metadata.genre", "==", "finance"), ("label.agent", "==", "m2")]),
    )
    assert set(world.ids(query)) == {"r2", "r3"}
    query = rg.Query(query="rally", filter=rg.Filter([("label.score", ">=", 0.5)]))
    assert set(world.ids(query)) == {"r2"}


def test_the_annotators_own_queue_uses_their_own_responses(world: World) -> None:
    def mine(values: list[str]) -> set[str]:
        found = world.search(
            world.annotator_http, mine=True, filters=terms("response", values, property="status")
        )
        assert found["total"] == len(found["items"])
        return set(world.keys(found))

    assert mine(["pending"]) == {"r0", "r4", "r5"}  # r0 was answered by the owner, not by them
    assert mine(["draft"]) == {"r2"}
    assert mine(["discarded"]) == {"r3"}
    assert mine(["submitted"]) == {"r1"}
    assert mine(["pending", "draft"]) == {"r0", "r2", "r4", "r5"}


def test_sorting_with_missing_values_last(world: World) -> None:
    def order(scope: dict[str, Any], direction: str) -> list[str]:
        return world.keys(world.search(sort=[{"scope": scope, "order": direction}]))

    price = {"entity": "metadata", "metadata_property": "price"}
    assert order(price, "asc")[:4] == ["r0", "r5", "r1", "r2"]
    assert order(price, "desc")[:4] == ["r2", "r1", "r5", "r0"]
    assert set(order(price, "asc")[4:]) == {"r3", "r4"}
    score = {"entity": "suggestion", "question": "label", "property": "score"}
    assert order(score, "desc")[:4] == ["r0", "r2", "r1", "r3"]
    inserted = {"entity": "record", "property": "inserted_at"}
    assert order(inserted, "asc") == list(TEXTS)


def test_dataset_and_user_progress(world: World) -> None:
    progress = world.dataset.progress()
    assert (progress["total"], progress["completed"], progress["pending"]) == (6, 2, 4)
    metrics = world.annotator_http.get(f"/api/v1/me/datasets/{world.dataset.id}/metrics").json()
    assert metrics["responses"] == {
        "total": 6,
        "submitted": 1,
        "discarded": 1,
        "draft": 1,
        "pending": 3,
    }


def test_metadata_metrics(world: World) -> None:
    properties = world.owner_http.get(
        f"/api/v1/me/datasets/{world.dataset.id}/metadata-properties"
    ).json()["items"]
    by_name = {p["name"]: p["id"] for p in properties}

    def metrics(name: str) -> dict[str, Any]:
        answer = world.owner_http.get(f"/api/v1/metadata-properties/{by_name[name]}/metrics")
        answer.raise_for_status()
        return dict(answer.json())

    genre = metrics("genre")
    assert genre["total"] == 5
    assert genre["values"] == [{"term": "finance", "count": 3}, {"term": "animals", "count": 2}]
    assert (metrics("price")["min"], metrics("price")["max"]) == (1.0, 10.0)
    assert (metrics("year")["min"], metrics("year")["max"]) == (2001, 2010)


def test_find_similar(world: World) -> None:
    nearest = list(
        world.dataset.records(
            with_responses=False,
            query=rg.Query(similar=rg.Similar(name="embedding", value=[1.0, 0.0, 0.0])),
        )
    )
    assert [r.id for r, _ in nearest][:2] == ["r0", "r2"]
    assert len(nearest) == 4  # records without a vector are not candidates
    r0 = next(r for r in world.dataset.records(with_responses=False) if r.id == "r0")
    like_r0 = list(
        world.dataset.records(
            with_responses=False,
            query=rg.Query(similar=rg.Similar(name="embedding", value=r0)),
        )
    )
    assert next(r.id for r, _ in like_r0) == "r2" and "r0" not in [r.id for r, _ in like_r0]
    farthest = list(
        world.dataset.records(
            with_responses=False,
            query=rg.Query(
                similar=rg.Similar(name="embedding", value=[1.0, 0.0, 0.0], most_similar=False)
            ),
        )
    )
    assert {r.id for r, _ in farthest[:2]} == {"r1", "r3"}
    filtered = list(
        world.dataset.records(
            with_responses=False,
            query=rg.Query(
                similar=rg.Similar(name="embedding", value=[1.0, 0.0, 0.0]),
                filter=rg.Filter(("metadata.genre", "==", "finance")),
            ),
        )
    )
    assert next(r.id for r, _ in filtered) == "r2" and "r0" not in [r.id for r, _ in filtered]


def test_updates_and_deletes_reach_the_index(any_argilla: LocalArgilla) -> None:
    world = World(any_argilla)
    world.dataset.records.log(
        [rg.Record(id="r4", fields={"text": "A calm day"}, metadata={"genre": "misc"})]
    )
    assert world.ids(rg.Query(filter=rg.Filter(("metadata.genre", "==", "misc")))) == ["r4"]
    assert len(world.ids()) == 6  # an update, not a new record
    r5 = next(r for r in world.dataset.records(with_responses=False) if r.id == "r5")
    world.dataset.records.delete([r5])
    assert sorted(world.ids()) == ["r0", "r1", "r2", "r3", "r4"]
    assert set(world.ids(rg.Query(query="fox*"))) == {"r0"}
    world.dataset.delete()
    gone = world.owner_http.post(f"/api/v1/datasets/{world.dataset.id}/records/search", json={})
    assert gone.status_code == 404
