"""Where the index lives: three tables in a SQL database, read through a per-process cache.

- ``alloop_search_docs``: one row per record, its document as JSON (or NULL once deleted),
  stamped with the dataset's revision when it was written;
- ``alloop_search_vectors``: one row per record and vector setting, float32 bytes;
- ``alloop_search_revisions``: one counter per dataset, bumped by every write.

A process keeps each dataset's documents in memory with the revision it has seen; before a
search it reads the counter (one small query) and, when it moved, only the rows written since.
The server and its worker are separate processes on the same database, so both stay exact.

With SQLite the index is a file of its own beside Argilla's database: Argilla writes its own
file in transactions that are still open when it calls the search engine, and a second writer
on the same SQLite file would wait for them forever.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import numpy as np
from sqlalchemy import (
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    and_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

metadata = MetaData()

docs_table = Table(
    "alloop_search_docs",
    metadata,
    Column("dataset_id", String(36), primary_key=True),
    Column("record_id", String(36), primary_key=True),
    Column("revision", Integer, nullable=False, index=True),
    Column("position", Integer, nullable=False),
    Column("doc", Text, nullable=True),
)

vectors_table = Table(
    "alloop_search_vectors",
    metadata,
    Column("dataset_id", String(36), primary_key=True),
    Column("settings_id", String(36), primary_key=True),
    Column("record_id", String(36), primary_key=True),
    Column("revision", Integer, nullable=False),
    Column("vector", LargeBinary, nullable=True),
)

revisions_table = Table(
    "alloop_search_revisions",
    metadata,
    Column("dataset_id", String(36), primary_key=True),
    Column("revision", Integer, nullable=False),
    Column("positions", Integer, nullable=False),
)


def index_database_url(argilla_url: str) -> str:
    """The index's own database: ``ALLOOP_SEARCH_DATABASE_URL``, else Argilla's PostgreSQL
    database, else a SQLite file next to Argilla's (``<name>.search.db``)."""
    configured = os.environ.get("ALLOOP_SEARCH_DATABASE_URL")
    if configured:
        return configured
    if argilla_url.startswith("sqlite"):
        prefix, _, path = argilla_url.partition(":///")
        query = ""
        if "?" in path:
            path, query = path.split("?", 1)
            query = "?" + query
        base = path[:-3] if path.endswith(".db") else path
        return f"{prefix}:///{base}.search.db{query}"
    return argilla_url


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in the index")


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, default=_json_default)


@dataclass
class DatasetCache:
    revision: int = -1
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)
    positions: dict[str, int] = field(default_factory=dict)
    vectors: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


class Store:
    """The tables, and this process's cache of them."""

    def __init__(self, url: str) -> None:
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30}
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        self.sqlite = url.startswith("sqlite")
        self._ready = False
        self._lock = asyncio.Lock()
        self._cache: dict[str, DatasetCache] = {}

    async def ready(self) -> None:
        if self._ready:
            return
        async with self.engine.begin() as connection:
            if self.sqlite:
                await connection.exec_driver_sql("PRAGMA journal_mode=WAL")
            await connection.run_sync(metadata.create_all)
        self._ready = True

    async def ping(self) -> bool:
        try:
            await self.ready()
            async with self.engine.connect() as connection:
                await connection.exec_driver_sql("SELECT 1")
            return True
        except Exception:
            return False

    # ---- writes ---------------------------------------------------------------------------

    async def _bump(self, connection: Any, dataset_id: str, new_rows: int = 0) -> tuple[int, int]:
        """Next revision of the dataset, and the first free insertion position."""
        row = (
            await connection.execute(
                select(revisions_table.c.revision, revisions_table.c.positions).where(
                    revisions_table.c.dataset_id == dataset_id
                )
            )
        ).first()
        if row is None:
            await connection.execute(
                revisions_table.insert().values(
                    dataset_id=dataset_id, revision=1, positions=new_rows
                )
            )
            return 1, 0
        revision, positions = int(row[0]) + 1, int(row[1])
        await connection.execute(
            update(revisions_table)
            .where(revisions_table.c.dataset_id == dataset_id)
            .values(revision=revision, positions=positions + new_rows)
        )
        return revision, positions

    async def put_docs(self, dataset_id: str, docs: list[dict[str, Any]]) -> None:
        """Insert or replace whole documents (and their vectors)."""
        await self.ready()
        async with self.engine.begin() as connection:
            ids = [d["id"] for d in docs]
            known = {
                str(r[0]): int(r[1])
                for r in (
                    await connection.execute(
                        select(docs_table.c.record_id, docs_table.c.position).where(
                            and_(
                                docs_table.c.dataset_id == dataset_id,
                                docs_table.c.record_id.in_(ids),
                            )
                        )
                    )
                ).all()
            }
            fresh = [i for i in ids if i not in known]
            revision, first = await self._bump(connection, dataset_id, len(fresh))
            positions = {**known, **{i: first + n for n, i in enumerate(fresh)}}
            for doc in docs:
                vectors = doc.pop("vectors", None) or {}
                row = {
                    "dataset_id": dataset_id,
                    "record_id": doc["id"],
                    "revision": revision,
                    "position": positions[doc["id"]],
                    "doc": dumps(doc),
                }
                if doc["id"] in known:
                    await connection.execute(
                        update(docs_table)
                        .where(
                            and_(
                                docs_table.c.dataset_id == dataset_id,
                                docs_table.c.record_id == doc["id"],
                            )
                        )
                        .values(**row)
                    )
                else:
                    await connection.execute(docs_table.insert().values(**row))
                await self._put_vectors(connection, dataset_id, doc["id"], revision, vectors)

    async def _put_vectors(
        self,
        connection: Any,
        dataset_id: str,
        record_id: str,
        revision: int,
        vectors: dict[str, Any],
    ) -> None:
        await connection.execute(
            update(vectors_table)
            .where(
                and_(
                    vectors_table.c.dataset_id == dataset_id, vectors_table.c.record_id == record_id
                )
            )
            .values(vector=None, revision=revision)
        )
        for settings_id, value in vectors.items():
            data = np.asarray(value, dtype=np.float32).tobytes()
            changed = await connection.execute(
                update(vectors_table)
                .where(
                    and_(
                        vectors_table.c.dataset_id == dataset_id,
                        vectors_table.c.record_id == record_id,
                        vectors_table.c.settings_id == settings_id,
                    )
                )
                .values(vector=data, revision=revision)
            )
            if changed.rowcount == 0:
                await connection.execute(
                    vectors_table.insert().values(
                        dataset_id=dataset_id,
                        settings_id=settings_id,
                        record_id=record_id,
                        revision=revision,
                        vector=data,
                    )
                )

    async def modify_doc(self, dataset_id: str, record_id: str, change: Any) -> bool:
        """Apply ``change(doc)`` to one stored document; False when there is none.

        The revision is bumped first: that write takes the dataset's lock (a row lock on
        PostgreSQL, the write lock on SQLite), so two changes to one record never lose each
        other.
        """
        await self.ready()
        async with self.engine.begin() as connection:
            revision, _ = await self._bump(connection, dataset_id)
            row = (
                await connection.execute(
                    select(docs_table.c.doc).where(
                        and_(
                            docs_table.c.dataset_id == dataset_id,
                            docs_table.c.record_id == record_id,
                        )
                    )
                )
            ).first()
            if row is None or row[0] is None:
                return False
            doc = json.loads(row[0])
            change(doc)
            await connection.execute(
                update(docs_table)
                .where(
                    and_(docs_table.c.dataset_id == dataset_id, docs_table.c.record_id == record_id)
                )
                .values(doc=dumps(doc), revision=revision)
            )
            return True

    async def delete_docs(self, dataset_id: str, record_ids: list[str]) -> None:
        """Mark documents deleted (a NULL document), so other processes' caches drop them."""
        await self.ready()
        async with self.engine.begin() as connection:
            revision, _ = await self._bump(connection, dataset_id)
            await connection.execute(
                update(docs_table)
                .where(
                    and_(
                        docs_table.c.dataset_id == dataset_id,
                        docs_table.c.record_id.in_(record_ids),
                    )
                )
                .values(doc=None, revision=revision)
            )
            await connection.execute(
                update(vectors_table)
                .where(
                    and_(
                        vectors_table.c.dataset_id == dataset_id,
                        vectors_table.c.record_id.in_(record_ids),
                    )
                )
                .values(vector=None, revision=revision)
            )

    async def drop_dataset(self, dataset_id: str) -> None:
        await self.ready()
        async with self.engine.begin() as connection:
            for table in (docs_table, vectors_table, revisions_table):
                await connection.execute(table.delete().where(table.c.dataset_id == dataset_id))
        self._cache.pop(dataset_id, None)

    async def create_dataset(self, dataset_id: str) -> None:
        await self.ready()
        async with self.engine.begin() as connection:
            await self._bump(connection, dataset_id)

    # ---- reads ----------------------------------------------------------------------------

    async def load(self, dataset_id: str) -> DatasetCache:
        """This dataset's documents and vectors, brought up to date with the database."""
        await self.ready()
        async with self._lock:
            cache = self._cache.setdefault(dataset_id, DatasetCache())
            async with self.engine.connect() as connection:
                row = (
                    await connection.execute(
                        select(revisions_table.c.revision).where(
                            revisions_table.c.dataset_id == dataset_id
                        )
                    )
                ).first()
                current = int(row[0]) if row else 0
                if current == cache.revision:
                    return cache
                rows = (
                    await connection.execute(
                        select(
                            docs_table.c.record_id, docs_table.c.position, docs_table.c.doc
                        ).where(
                            and_(
                                docs_table.c.dataset_id == dataset_id,
                                docs_table.c.revision > cache.revision,
                            )
                        )
                    )
                ).all()
                for record_id, position, doc in rows:
                    if doc is None:
                        cache.docs.pop(record_id, None)
                        cache.positions.pop(record_id, None)
                    else:
                        cache.docs[record_id] = json.loads(doc)
                        cache.positions[record_id] = int(position)
                vector_rows = (
                    await connection.execute(
                        select(
                            vectors_table.c.settings_id,
                            vectors_table.c.record_id,
                            vectors_table.c.vector,
                        ).where(
                            and_(
                                vectors_table.c.dataset_id == dataset_id,
                                vectors_table.c.revision > cache.revision,
                            )
                        )
                    )
                ).all()
                for settings_id, record_id, vector in vector_rows:
                    bucket = cache.vectors.setdefault(settings_id, {})
                    if vector is None:
                        bucket.pop(record_id, None)
                    else:
                        bucket[record_id] = np.frombuffer(vector, dtype=np.float32)
                cache.revision = current
            return cache
