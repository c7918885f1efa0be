"""The drift reports of every window, in ``$ALLOOP_HOME/drift/drift.db`` (SQLite, WAL, as the
label database: the scorer writes, the API and the CLI read)."""

from __future__ import annotations

import threading
from pathlib import Path

from loop.drift.report import DriftReport
from loop.label_db import connect, transaction

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    number INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    model_version TEXT,
    drift INTEGER NOT NULL,
    report TEXT NOT NULL
);
"""


class DriftStore:
    """Append-only history of drift reports, numbered in the order they were stored."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = connect(path, _SCHEMA, SCHEMA_VERSION)
        self._lock = threading.Lock()

    def add(self, report: DriftReport) -> DriftReport:
        """Store ``report``; it comes back with its window number."""
        with self._lock, transaction(self._db) as db:
            row = db.execute("SELECT coalesce(max(number), 0) + 1 FROM reports").fetchone()
            numbered = report.model_copy(update={"window": int(row[0])})
            db.execute(
                "INSERT INTO reports (number, at, model_version, drift, report) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    numbered.window,
                    numbered.at.isoformat(),
                    numbered.model_version,
                    int(numbered.drift),
                    numbered.model_dump_json(),
                ),
            )
        return numbered

    def history(self, last: int | None = None) -> list[DriftReport]:
        """Reports in window order (the ``last`` ones only, when given)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT report FROM (SELECT number, report FROM reports ORDER BY number DESC "
                "LIMIT ?) ORDER BY number",
                (-1 if last is None else last,),
            ).fetchall()
        return [DriftReport.model_validate_json(r[0]) for r in rows]

    def latest(self) -> DriftReport | None:
        found = self.history(last=1)
        return found[0] if found else None

    def close(self) -> None:
        with self._lock:
            self._db.close()
