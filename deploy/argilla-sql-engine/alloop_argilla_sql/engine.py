"""The ``sql`` search engine for argilla-server 2.8: Argilla's SearchEngine contract on a SQL
database instead of Elasticsearch.

Records are indexed as the same documents the Elasticsearch engine builds (see
``argilla_server/search_engine/commons.py``), kept in SQL tables (:mod:`.store`), and searched
in Python with the same semantics (:mod:`.query`): filters, sorting, the text query, per-user
response status with Argilla's meaning of ``pending``, progress, metadata metrics, and "find
similar" by cosine similarity. Start the server and its worker with
``ARGILLA_SEARCH_ENGINE=sql`` through ``python -m alloop_argilla_sql``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numpy as np
from argilla_server.enums import MetadataPropertyType, SimilarityOrder, SortOrder
from argilla_server.models import (
    Dataset,
    MetadataProperty,
    Record,
    Response,
    Suggestion,
    User,
    VectorSettings,
)
from argilla_server.search_engine.base import (
    AndFilter,
    Filter,
    FloatMetadataMetrics,
    IntegerMetadataMetrics,
    MetadataFilterScope,
    MetadataMetrics,
    Order,
    RangeFilter,
    RecordFilterScope,
    ResponseFilterScope,
    SearchEngine,
    SearchResponseItem,
    SearchResponses,
    SuggestionFilterScope,
    TermsFilter,
    TermsMetrics,
    TextQuery,
)
from argilla_server.settings import settings

from . import query as q
from .store import Store, index_database_url

logger = logging.getLogger(__name__)

ENGINE_NAME = "sql"

_store: Store | None = None


def store() -> Store:
    """One store per process, made on first use from Argilla's database settings."""
    global _store
    if _store is None:
        url = index_database_url(settings.database_url or "")
        _store = Store(url)
        logger.info("alloop search index in %s", url.split("@")[-1])
    return _store


# ---- from Argilla's objects to documents and query terms ------------------------------------


def _response_doc(response: Response) -> dict:
    return {
        "id": str(response.id),
        "status": str(
            response.status.value if hasattr(response.status, "value") else response.status
        ),
        "user_id": str(response.user_id),
        **{
            question: (value or {}).get("value")
            for question, value in (response.values or {}).items()
        },
    }


def _suggestion_doc(suggestion: Suggestion) -> dict:
    kind = suggestion.type
    return {
        "type": kind.value if hasattr(kind, "value") else kind,
        "agent": suggestion.agent,
        "score": suggestion.score,
        "value": suggestion.value,
    }


def record_doc(record: Record) -> dict:
    """The document the Elasticsearch engine would index for ``record``."""
    dataset = record.dataset
    fields = {}
    for field in dataset.fields:
        if field.is_image:
            continue
        value = (record.fields or {}).get(field.name)
        if field.is_custom and value is not None:
            value = str(value)
        fields[field.name] = value
    known_metadata = {p.name for p in dataset.metadata_properties}
    doc = {
        "id": str(record.id),
        "external_id": record.external_id,
        "fields": fields,
        "status": str(record.status.value if hasattr(record.status, "value") else record.status),
        "inserted_at": record.inserted_at.isoformat() if record.inserted_at else None,
        "updated_at": record.updated_at.isoformat() if record.updated_at else None,
        "metadata": {
            k: v
            for k, v in (record.metadata_ or {}).items()
            if k in known_metadata and v is not None
        },
        "responses": [_response_doc(r) for r in (record.responses or [])],
        "suggestions": {s.question.name: _suggestion_doc(s) for s in (record.suggestions or [])},
        "vectors": {str(v.vector_settings_id): v.value for v in (record.vectors or [])},
    }
    return doc


def _scope(scope: Any) -> q.Scope:
    if isinstance(scope, RecordFilterScope):
        prop = scope.property.value if hasattr(scope.property, "value") else scope.property
        return q.Scope("record", property=str(prop))
    if isinstance(scope, MetadataFilterScope):
        return q.Scope("metadata", name=scope.metadata_property)
    if isinstance(scope, SuggestionFilterScope):
        return q.Scope("suggestion", name=scope.question, property=scope.property)
    if isinstance(scope, ResponseFilterScope):
        return q.Scope(
            "response",
            name=scope.question,
            property=scope.property,
            user_id=str(scope.user.id) if scope.user is not None else None,
        )
    raise ValueError(f"Cannot process request for search scope {scope}")


def to_filter(filter_: Filter) -> q.Filter:
    if isinstance(filter_, AndFilter):
        return q.And(tuple(to_filter(f) for f in filter_.filters))
    if isinstance(filter_, TermsFilter):
        values = tuple(str(v.value if hasattr(v, "value") else v) for v in filter_.values)
        return q.Terms(_scope(filter_.scope), values)
    if isinstance(filter_, RangeFilter):
        return q.Range(_scope(filter_.scope), filter_.ge, filter_.le)
    raise ValueError(f"Cannot process request for filter {filter_}")


def to_orders(sort: list[Order]) -> list[q.Order]:
    return [q.Order(_scope(o.scope), descending=o.order == SortOrder.desc) for o in sort]


def _text(text: TextQuery | str | None) -> q.TextQuery | None:
    if text is None:
        return None
    if isinstance(text, str):
        return q.TextQuery(text)
    return q.TextQuery(text.q, text.field)


@SearchEngine.register(engine_name=ENGINE_NAME)
class SqlSearchEngine(SearchEngine):
    """Argilla's search contract on SQL tables; see the module's description."""

    @classmethod
    async def new_instance(cls) -> SqlSearchEngine:
        return cls()

    async def close(self) -> None:
        pass  # the store lives as long as the process

    async def ping(self) -> bool:
        return await store().ping()

    async def info(self) -> dict:
        return {"engine": ENGINE_NAME, "database": store().engine.url.get_backend_name()}

    # ---- index management -----------------------------------------------------------------

    async def create_index(self, dataset: Dataset) -> None:
        await store().create_dataset(str(dataset.id))

    async def delete_index(self, dataset: Dataset) -> None:
        await store().drop_dataset(str(dataset.id))

    async def configure_metadata_property(
        self, dataset: Dataset, metadata_property: MetadataProperty
    ) -> None:
        pass  # documents are schemaless; properties added later are indexed as records change

    async def configure_index_vectors(self, vector_settings: VectorSettings) -> None:
        pass

    # ---- records --------------------------------------------------------------------------

    async def index_records(self, dataset: Dataset, records: Iterable[Record]) -> None:
        docs = [record_doc(r) for r in records]
        if docs:
            await store().put_docs(str(dataset.id), docs)

    async def partial_record_update(self, record: Record, **update: Any) -> None:
        clean = {k: (v.value if hasattr(v, "value") else v) for k, v in update.items()}
        await store().modify_doc(
            str(record.dataset_id), str(record.id), lambda doc: doc.update(clean)
        )

    async def delete_records(self, dataset: Dataset, records: Iterable[Record]) -> None:
        ids = [str(r.id) for r in records]
        if ids:
            await store().delete_docs(str(dataset.id), ids)

    async def update_record_response(self, response: Response) -> None:
        record = response.record
        new = _response_doc(response)

        def change(doc: dict) -> None:
            kept = [r for r in doc.get("responses") or [] if r.get("id") != new["id"]]
            doc["responses"] = [*kept, new]

        await store().modify_doc(str(record.dataset_id), str(record.id), change)

    async def delete_record_response(self, response: Response) -> None:
        record = response.record
        gone = str(response.id)

        def change(doc: dict) -> None:
            doc["responses"] = [r for r in doc.get("responses") or [] if r.get("id") != gone]

        await store().modify_doc(str(record.dataset_id), str(record.id), change)

    async def update_record_suggestion(self, suggestion: Suggestion) -> None:
        record = suggestion.record
        name, value = suggestion.question.name, _suggestion_doc(suggestion)

        def change(doc: dict) -> None:
            doc.setdefault("suggestions", {})[name] = value

        await store().modify_doc(str(record.dataset_id), str(suggestion.record_id), change)

    async def delete_record_suggestion(self, suggestion: Suggestion) -> None:
        record = suggestion.record
        name = suggestion.question.name
        await store().modify_doc(
            str(record.dataset_id),
            str(suggestion.record_id),
            lambda doc: (doc.get("suggestions") or {}).pop(name, None),
        )

    # ---- progress and metrics ---------------------------------------------------------------

    async def get_dataset_progress(self, dataset: Dataset) -> dict:
        if dataset.is_draft:
            return {}
        docs = (await store().load(str(dataset.id))).docs.values()
        total, counts = q.terms_metrics(d.get("status") for d in docs)
        return {"total": total, **dict(counts)}

    async def get_dataset_user_progress(self, dataset: Dataset, user: User) -> dict:
        """The statuses of ``user``'s own responses. (Elasticsearch aggregates the statuses of
        every response on the records the user answered; with one annotator per record the
        two agree, with several this one is the per-user progress the UI means to show.)"""
        if dataset.is_draft:
            return {}
        user_id = str(user.id)
        docs = (await store().load(str(dataset.id))).docs.values()
        statuses = [
            r.get("status")
            for d in docs
            for r in d.get("responses") or []
            if str(r.get("user_id")) == user_id
        ]
        total, counts = q.terms_metrics(statuses)
        return {"total": total, **dict(counts)}

    async def compute_metrics_for(self, metadata_property: MetadataProperty) -> MetadataMetrics:
        docs = (await store().load(str(metadata_property.dataset_id))).docs.values()
        values = [(d.get("metadata") or {}).get(metadata_property.name) for d in docs]
        values = [v for v in values if v is not None]
        if metadata_property.type == MetadataPropertyType.terms:
            total, counts = q.terms_metrics(values)
            return TermsMetrics(
                total=total, values=[TermsMetrics.TermCount(term=t, count=c) for t, c in counts]
            )
        numbers = [float(x) for v in values for x in (v if isinstance(v, list) else [v])]
        if metadata_property.type == MetadataPropertyType.integer:
            return IntegerMetadataMetrics(
                min=int(min(numbers)) if numbers else None,
                max=int(max(numbers)) if numbers else None,
            )
        return FloatMetadataMetrics(
            min=min(numbers) if numbers else None, max=max(numbers) if numbers else None
        )

    # ---- search -----------------------------------------------------------------------------

    async def _candidates(
        self, dataset: Dataset, text: TextQuery | str | None, filter_: Filter | None
    ) -> tuple[list[dict], dict[str, float], dict[str, int]]:
        cache = await store().load(str(dataset.id))
        docs = list(cache.docs.values())
        if filter_ is not None:
            compiled = to_filter(filter_)
            docs = [d for d in docs if q.matches(d, compiled)]
        scores = {d["id"]: 1.0 for d in docs}
        parsed = _text(text)
        if parsed is not None:
            run = parsed.compile()
            kept = []
            for doc in docs:
                ok, score = run(doc)
                if ok:
                    kept.append(doc)
                    scores[doc["id"]] = 1.0 + score
            docs = kept
        return docs, scores, cache.positions

    async def search(
        self,
        dataset: Dataset,
        query: TextQuery | str | None = None,
        filter: Filter | None = None,
        sort: list[Order] | None = None,
        offset: int = 0,
        limit: int = 100,
        user_id: str | None = None,
    ) -> SearchResponses:
        docs, scores, positions = await self._candidates(dataset, query, filter)
        if user_id is not None:  # each user's own stable shuffle, as Argilla's random score
            for doc in docs:
                scores[doc["id"]] *= q.user_order(doc["id"], str(user_id))
        if sort:
            docs = q.sort_docs(docs, to_orders(sort))
        else:
            docs.sort(key=lambda d: (-scores[d["id"]], positions.get(d["id"], 0)))
        page = docs[offset : offset + limit]
        return SearchResponses(
            items=[SearchResponseItem(record_id=d["id"], score=scores[d["id"]]) for d in page],
            total=len(docs),
        )

    async def similarity_search(
        self,
        dataset: Dataset,
        vector_settings: VectorSettings,
        value: list[float] | None = None,
        record: Record | None = None,
        query: TextQuery | str | None = None,
        filter: Filter | None = None,
        max_results: int = 100,
        order: SimilarityOrder = SimilarityOrder.most_similar,
        threshold: float | None = None,
    ) -> SearchResponses:
        if bool(value) == bool(record):
            raise ValueError(
                "Must provide either vector value or record to compute the similarity search"
            )
        excluded = None
        if not value:
            assert record is not None
            excluded = str(record.id)
            value = record.vector_value_by_vector_settings(vector_settings)
        if not value:
            raise ValueError("Cannot find a vector value to apply with provided info")
        target = np.asarray(value, dtype=np.float32)
        if order == SimilarityOrder.least_similar:
            target = -target
        docs, _, _ = await self._candidates(dataset, query, filter)
        vectors = (await store().load(str(dataset.id))).vectors.get(str(vector_settings.id), {})
        ids = [d["id"] for d in docs if d["id"] != excluded and d["id"] in vectors]
        if not ids:
            return SearchResponses(items=[], total=0)
        matrix = np.stack([vectors[i] for i in ids])
        norms = np.linalg.norm(matrix, axis=1) * (np.linalg.norm(target) or 1.0)
        cosine = matrix @ target / np.where(norms == 0, 1.0, norms)
        scores = (1.0 + cosine) / 2.0  # Elasticsearch's score for cosine similarity
        best = np.argsort(-scores, kind="stable")[:max_results]
        items = [
            SearchResponseItem(record_id=ids[i], score=float(scores[i]))
            for i in best
            if threshold is None or scores[i] >= threshold
        ]
        return SearchResponses(items=items, total=len(items))
