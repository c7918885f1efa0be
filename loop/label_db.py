"""The label database: one SQLite file that several processes share.

The trainer writes answers while the API, the training rounds and the CLI read them. Every connection uses write-ahead logging
(readers never block the writer, nor the writer them), ``synchronous=FULL`` (each commit is
on disk before it returns, so an answer is stored for good before its Kafka offset is
committed, also across a power cut) and a busy timeout (a writer waits for another writer's
transaction instead of failing). A write is one ``BEGIN IMMEDIATE`` transaction: it takes the
write lock before it reads, so a read-then-write (the "older never replaces newer" rule, a
delivery id check) cannot interleave with another process's.

Tables: ``answers`` (one row per Argilla response id, see :mod:`loop.labels`).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

BUSY_TIMEOUT_S = 30.0  # how long a writer waits for another one's transaction
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    response_id TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    document TEXT NOT NULL,
    labelled_at_us INTEGER NOT NULL,
    event TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS answers_by_task_and_time ON answers (task, labelled_at_us);
"""


def connect(path: Path) -> sqlite3.Connection:
    """Open (and create, the first time) the database at ``path``.

    The connection may be used from several threads, one at a time (the caller locks), and is
    in autocommit mode: transactions are explicit, through :func:`transaction`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    try:
        db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"{path}: cannot use write-ahead logging ({mode})")
        db.execute("PRAGMA synchronous = FULL")
        if db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            with transaction(db):  # the first open: several processes may race to it
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        db.close()
        raise
    return db


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction: all of it is stored, or none of it (an exception rolls back)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
