"""The label database: one SQLite file that several processes share.

The trainer writes answers while the API, the training rounds and the CLI read them, and the
API records the webhook deliveries it processed. Every connection uses write-ahead logging
(readers never block the writer, nor the writer them), ``synchronous=FULL`` (each commit is
on disk before it returns, so an answer is stored for good before its Kafka offset is
committed, also across a power cut) and a busy timeout (a writer waits for another writer's
transaction instead of failing). A write is one ``BEGIN IMMEDIATE`` transaction: it takes the
write lock before it reads, so a read-then-write (the "older never replaces newer" rule, a
delivery id check) cannot interleave with another process's.

Tables: ``answers`` (one row per Argilla response id, see :mod:`loop.labels`) and
``deliveries`` (the ``webhook-id`` of each delivery processed inside the replay window).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
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
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY,
    stamp REAL NOT NULL,
    seen_at REAL NOT NULL
);
"""


def connect(path: Path, schema: str = _SCHEMA, version: int = SCHEMA_VERSION) -> sqlite3.Connection:
    """Open (and create, the first time, with ``schema``) the database at ``path``; other
    stores of alloop (the drift reports) open theirs with their own schema the same way.

    The connection may be used from several threads, one at a time (the caller locks), and is
    in autocommit mode: transactions are explicit, through :func:`transaction`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    try:
        db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        mode = write_ahead_logging(db)
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"{path}: cannot use write-ahead logging ({mode})")
        db.execute("PRAGMA synchronous = FULL")
        if db.execute("PRAGMA user_version").fetchone()[0] < version:
            with transaction(db):  # the first open: several processes may race to it
                for statement in filter(str.strip, schema.split(";")):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {version}")
    except BaseException:
        db.close()
        raise
    return db


def write_ahead_logging(db: sqlite3.Connection, within_s: float = BUSY_TIMEOUT_S) -> str:
    """Switch ``db`` to write-ahead logging; the journal mode it has after.

    Processes that open a new database at the same moment all switch it, and SQLite can answer
    "database is locked" at once to some of them, without waiting out the busy timeout
    (waiting could deadlock, each holding the lock the other needs). Such a refusal is tried
    again until ``within_s`` has passed; by then the switch is made and persists in the file."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            return str(db.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


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


class DeliveryLog:
    """The ``webhook-id`` of every delivery processed within ``window_s`` of its signed
    timestamp, kept in the label database: a replay is refused after an API restart and by
    every API process that shares the database. After the window the timestamp check refuses
    a copy anyway, so older ids are pruned.

    :meth:`claim` before processing; then :meth:`done` when the delivery was processed (its id
    is stored), or :meth:`release` when processing failed (the sender may retry with the same
    id). A claim that is not done yet lives in this process only: a crash mid-delivery does
    not leave an id behind that would refuse Argilla's retry.
    """

    def __init__(self, path: Path, window_s: float) -> None:
        self.path = path
        self.window_s = window_s
        self._db = connect(path)
        self._lock = threading.Lock()
        self._pending: set[str] = set()

    def claim(self, msg_id: str, stamp: float, now: float | None = None) -> bool:
        """Whether ``msg_id`` is new (it is then held until done or released); False for a
        delivery already processed, or being processed here."""
        current = time.time() if now is None else now
        with self._lock:
            if msg_id in self._pending:
                return False
            with transaction(self._db) as db:
                db.execute(
                    "DELETE FROM deliveries WHERE max(stamp, seen_at) + ? < ?",
                    (self.window_s + 1, current),
                )
                seen = db.execute("SELECT 1 FROM deliveries WHERE id = ?", (msg_id,)).fetchone()
            if seen is not None:
                return False
            self._pending.add(msg_id)
            return True

    def done(self, msg_id: str, stamp: float, now: float | None = None) -> None:
        """Remember ``msg_id`` as processed (fsynced, like an answer)."""
        current = time.time() if now is None else now
        with self._lock:
            try:
                with transaction(self._db) as db:
                    db.execute(
                        "INSERT OR IGNORE INTO deliveries (id, stamp, seen_at) VALUES (?, ?, ?)",
                        (msg_id, stamp, current),
                    )
            finally:
                self._pending.discard(msg_id)

    def release(self, msg_id: str) -> None:
        with self._lock:
            self._pending.discard(msg_id)

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM deliveries").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
