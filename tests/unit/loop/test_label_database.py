"""The label store as a database: atomic batches, several processes, the JSON Lines import."""

from __future__ import annotations

import logging
import multiprocessing
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from loop import label_db
from loop.labels import LabelStore
from loop.messages import LabelEvent
from tests.unit.loop.test_labels import answer, legacy_file

SPAWN = multiprocessing.get_context("spawn")  # a child opens its own store, as a process would


def test_a_batch_that_fails_midway_stores_none_of_it(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "labels.db")
    store.add([answer("d0", "up", "r0")])

    def batch() -> Iterator[LabelEvent]:
        yield answer("d1", "up", "r1")
        yield answer("d0", "down", "r0", minutes=5)  # an edit, also undone
        raise OSError("the relay died mid-batch")

    with pytest.raises(OSError, match="mid-batch"):
        store.add(batch())
    for view in (store, LabelStore(store.path)):
        assert view.get("r1") is None, "half a batch was stored"
        held = view.get("r0")
        assert held is not None and held.label == "up"
        assert len(view) == 1


def _write(path: str, writer: str, start: object, batches: int, size: int) -> None:
    store = LabelStore(Path(path))
    start.wait()  # type: ignore[attr-defined]
    for b in range(batches):
        store.add(
            answer(f"{writer}-{b}-{i}", "up", f"{writer}-{b}-{i}").model_copy(
                update={"text": f"{writer} " * 300}  # long answers: a batch is many writes
            )
            for i in range(size)
        )


class _Switching:
    """A connection whose switch to write-ahead logging is refused ``refusals`` times."""

    def __init__(self, refusals: int, error: str = "database is locked") -> None:
        self.refusals, self.error, self.tries = refusals, error, 0

    def execute(self, sql: str) -> _Switching:
        self.tries += 1
        if self.tries <= self.refusals:
            raise sqlite3.OperationalError(self.error)
        return self

    def fetchone(self) -> tuple[str]:
        return ("wal",)


def test_a_refused_switch_to_write_ahead_logging_is_tried_again() -> None:
    db = _Switching(refusals=3)
    assert label_db.write_ahead_logging(db, within_s=5) == "wal"  # type: ignore[arg-type]
    assert db.tries == 4
    for other in (_Switching(1, "disk I/O error"), _Switching(10**6)):
        with pytest.raises(sqlite3.OperationalError):
            label_db.write_ahead_logging(other, within_s=0.05)  # type: ignore[arg-type]


def _open(path: str, together: object) -> None:
    together.wait(60)  # type: ignore[attr-defined]  # every opener is ready: all open at once
    label_db.connect(Path(path)).close()


@pytest.mark.slow
def test_processes_opening_a_new_database_at_the_same_moment_all_open_it(tmp_path: Path) -> None:
    """The first open switches the file to write-ahead logging; SQLite refused that at once
    to about one process in forty opening the same new file at the same moment."""
    for attempt in range(8):
        together = SPAWN.Barrier(5)
        path = str(tmp_path / f"labels-{attempt}.db")
        openers = [SPAWN.Process(target=_open, args=(path, together)) for _ in range(5)]
        for opener in openers:
            opener.start()
        for opener in openers:
            opener.join(60)
        assert [opener.exitcode for opener in openers] == [0] * len(openers)


def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "labels.db"
    start = SPAWN.Event()
    writers = [SPAWN.Process(target=_write, args=(str(path), name, start, 20, 50)) for name in "ab"]
    for writer in writers:
        writer.start()
    start.set()
    for writer in writers:
        writer.join(60)
        assert writer.exitcode == 0
    store = LabelStore(path)
    expected = {f"{w}-{b}-{i}" for w in "ab" for b in range(20) for i in range(50)}
    assert {a.response_id for a in store.answers()} == expected
    assert len(store) == 2000


def _add_one(path: str, label: str, minutes: int) -> None:
    LabelStore(Path(path)).add([answer("d1", label, "r1", minutes=minutes)])


def test_an_older_answer_never_replaces_a_newer_one_written_by_another_process(
    tmp_path: Path,
) -> None:
    path = tmp_path / "labels.db"
    here = LabelStore(path)  # opened before the other process writes
    other = SPAWN.Process(target=_add_one, args=(str(path), "down", 5))
    other.start()
    other.join(60)
    assert other.exitcode == 0
    assert here.add([answer("d1", "up", "r1", minutes=1)]) == 0, "an older copy was stored"
    held = here.get("r1")
    assert held is not None and held.label == "down"

    late = SPAWN.Process(target=_add_one, args=(str(path), "up", 2))  # older, from elsewhere
    late.start()
    late.join(60)
    assert late.exitcode == 0
    [resolved] = LabelStore(path).labelled()
    assert resolved.label == "down"


def test_a_json_lines_store_is_imported_once_and_kept_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    legacy = legacy_file(
        tmp_path / "labels.jsonl",
        answer("d1", "up", "r1"),
        answer("d1", "down", "r1", minutes=5),  # an edit, later in the file
        answer("d2", "down", "r2"),
        torn='{"schema": "label", "id": "d3", "te',  # crash mid-write
    )
    original = legacy.read_bytes()
    with caplog.at_level(logging.INFO, logger="loop.labels"):
        store = LabelStore(tmp_path / "labels.db")
    assert [(r.id, r.label) for r in store.labelled()] == [("d1", "down"), ("d2", "down")]
    assert not legacy.exists()
    kept = tmp_path / "labels.jsonl.imported"
    assert kept.read_bytes() == original, "the old file is kept, unchanged"
    assert any("imported 2 answer(s)" in r.getMessage() for r in caplog.records)

    store.add([answer("d2", "up", "r2", minutes=10)])  # newer than the file's
    legacy.write_bytes(original)  # a crash before the rename: the file is read again
    again = LabelStore(tmp_path / "labels.db")
    assert len(again) == 2
    assert [(r.id, r.label) for r in again.labelled()] == [("d1", "down"), ("d2", "up")]
    assert not legacy.exists()


def test_a_json_lines_path_is_refused_with_the_new_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"labels\.db"):
        LabelStore(tmp_path / "labels.jsonl")
