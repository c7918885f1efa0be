"""The label store: every answer people gave, and the label each document ends up with.

Answers arrive as :class:`~loop.messages.LabelEvent` (from Argilla's webhooks or from a poll
that catches up). The store keeps the latest answer per Argilla response id, so a re-delivered
webhook or a re-polled response changes nothing, and an edited response replaces the old one.
:meth:`LabelStore.resolve` turns the answers into one label per document: the agreed label
when enough people submitted one, with the share of annotators who agree. A multi-label answer
(a set of labels) is resolved label by label: a label applies when more than half of the
annotators chose it, and the agreement is the mean, over the labels anybody chose, of the
share of annotators on the winning side of that label.

The store is a SQLite database (:mod:`loop.label_db`), one row per response id, shared by
the processes that write and read it. A batch of answers is one transaction, stored whole or
not at all, and fsynced before :meth:`LabelStore.add_new` returns; the rule that an older
answer never replaces a newer one is applied inside that transaction, against what every
process stored. Readers ask the database each time: a store opened long ago sees answers other
processes stored since.

The JSON Lines file of earlier versions (``labels.jsonl`` beside the database) is imported
the first time the store opens (a torn last line is skipped, as it was when reading the file)
and then renamed ``labels.jsonl.imported``. Importing again changes nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from loop import label_db
from loop.errors import MessageError
from loop.messages import EntityMention, LabelEvent, decode

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResolvedLabel:
    """What one document ends up with after all its answers.

    ``label`` is None when the document was discarded or when annotators did not agree
    enough; ``status`` says which. ``agreement`` is the share of submitted answers that gave
    the winning label (1.0 with a single annotator).
    """

    id: str
    text: str
    task: str
    label: str | None
    status: str  # "labelled" | "discarded" | "disputed" | "waiting"
    agreement: float | None
    answers: int
    origin: str | None
    labelled_at: datetime | None = None  # the latest answer's time
    spans: tuple[EntityMention, ...] | None = None  # the agreed entities (entity tasks)
    labels: tuple[str, ...] | None = None  # the agreed label set (multi-label datasets)

    @property
    def target(self) -> str | tuple[str, ...]:
        """What a classifier trains on: the label, or the label set of a multi-label answer."""
        return self.labels if self.labels is not None else str(self.label)


def agreed(
    doc_id: str,
    text: str,
    task: str,
    origin: str,
    *,
    label: str | None = None,
    labels: Iterable[str] | None = None,
    spans: Iterable[EntityMention] | None = None,
) -> ResolvedLabel:
    """A label a file gives (a seed or evaluation file of the owner's): one agreed answer,
    as :meth:`LabelStore.resolve` would return it."""
    return ResolvedLabel(
        id=doc_id,
        text=text,
        task=task,
        label=label,
        status="labelled",
        agreement=1.0,
        answers=1,
        origin=origin,
        spans=None if spans is None else tuple(spans),
        labels=None if labels is None else tuple(sorted(set(labels))),
    )


Vote = str | tuple[tuple[int, int, str], ...] | frozenset[str]


def _vote(answer: LabelEvent) -> Vote | None:
    """What an answer says, comparable between annotators: the class, the set of labels, or
    the set of spans."""
    if answer.status != "submitted":
        return None
    if answer.spans is not None:
        return tuple(sorted((m.start, m.end, m.label) for m in answer.spans))
    if answer.labels is not None:
        return frozenset(answer.labels)
    return answer.label


def label_majority(sets: list[frozenset[str]]) -> tuple[tuple[str, ...], float, bool]:
    """Per-label majority over the label sets of several annotators: the labels more than
    half of them chose, the mean share on the winning side of each label anybody chose (1.0
    when all agree), and whether some label was a tie."""
    chosen = sorted(set().union(*sets))
    if not chosen:
        return (), 1.0, False
    shares = {label: sum(label in s for s in sets) / len(sets) for label in chosen}
    agreement = sum(max(share, 1 - share) for share in shares.values()) / len(chosen)
    tied = any(share == 0.5 for share in shares.values())
    return tuple(label for label, share in shares.items() if share > 0.5), agreement, tied


def _newer(old: LabelEvent, new: LabelEvent) -> bool:
    return new.labelled_at >= old.labelled_at


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _micros(when: datetime) -> int:
    """A time as whole microseconds since the epoch: exact, and ordered like the times."""
    return (when - _EPOCH) // _MICROSECOND


def _time(micros: int) -> datetime:
    return _EPOCH + micros * _MICROSECOND


def _of_task(task: str | None) -> tuple[str, tuple[str, ...]]:
    """The WHERE clause and its arguments for the answers of ``task`` (all when None)."""
    return ("", ()) if task is None else (" WHERE task = ?", (task,))


@dataclass(frozen=True)
class Given:
    """The answers of a task given after some time: how many, the oldest and newest time."""

    count: int
    oldest: datetime | None
    newest: datetime | None


class LabelStore:
    """All answers for a project, in one SQLite database at ``path`` (``labels.db``).

    ``min_submitted`` is how many submitted answers a document needs before it counts (Argilla's
    task distribution ``min_submitted``); ``min_agreement`` is the share of them that must
    agree on one label, otherwise the document is ``disputed`` and not trained on.
    """

    def __init__(self, path: Path, min_submitted: int = 1, min_agreement: float = 0.5) -> None:
        if min_submitted < 1:
            raise ValueError("min_submitted must be at least 1")
        if path.suffix == ".jsonl":
            raise ValueError(
                f"{path}: the label store is a SQLite database now; open "
                f"{path.with_suffix('.db')}, which imports {path.name} the first time"
            )
        self.path = path
        self.min_submitted = min_submitted
        self.min_agreement = min_agreement
        self._lock = threading.Lock()
        self._db = label_db.connect(path)
        self._import(path.with_suffix(".jsonl"))

    def _import(self, legacy: Path) -> None:
        """Bring the answers of a JSON Lines store of earlier versions in, once."""
        if not legacy.exists():
            return
        changed: set[str] = set()
        skipped = 0
        with self._lock, label_db.transaction(self._db) as db:
            if not legacy.exists():  # another process imported it meanwhile
                return
            with legacy.open("rb") as handle:
                for number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    try:
                        event = decode(line, LabelEvent)
                    except MessageError as exc:
                        logger.warning("%s:%d: skipped: %s", legacy, number, exc)
                        skipped += 1
                        continue
                    if self._keep(db, event):
                        changed.add(event.response_id)
        kept = legacy.with_name(legacy.name + ".imported")
        with contextlib.suppress(FileNotFoundError):  # another process that imported it too
            os.replace(legacy, kept)
        logger.info(
            "%s: imported %d answer(s) into %s (%d line(s) skipped); the file is kept as %s",
            legacy,
            len(changed),
            self.path,
            skipped,
            kept.name,
        )

    def _held(self, db: sqlite3.Connection, response_id: str) -> LabelEvent | None:
        row = db.execute(
            "SELECT event FROM answers WHERE response_id = ?", (response_id,)
        ).fetchone()
        return None if row is None else LabelEvent.model_validate_json(row[0])

    def _keep(self, db: sqlite3.Connection, event: LabelEvent) -> bool:
        """Store ``event`` unless the store holds the same answer or a newer one (call inside
        a write transaction, so that no other process writes between the read and the
        write)."""
        held = self._held(db, event.response_id)
        if held is not None and (held.same_answer(event) or not _newer(held, event)):
            return False
        db.execute(
            "INSERT INTO answers (response_id, task, document, labelled_at_us, event) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (response_id) DO UPDATE SET "
            "task = excluded.task, document = excluded.document, "
            "labelled_at_us = excluded.labelled_at_us, event = excluded.event",
            (
                event.response_id,
                event.task,
                event.id,
                _micros(event.labelled_at),
                event.model_dump_json(by_alias=True),
            ),
        )
        return True

    def add(self, events: Iterable[LabelEvent]) -> int:
        """Record answers; return how many changed the store (re-deliveries do not)."""
        return len(self.add_new(events))

    def add_new(self, events: Iterable[LabelEvent]) -> list[LabelEvent]:
        """Record answers, all or (on an error) none of them, on disk when this returns;
        return those that changed the store (re-deliveries do not)."""
        with self._lock, label_db.transaction(self._db) as db:
            return [event for event in events if self._keep(db, event)]

    def __len__(self) -> int:
        return self.count()

    def count(self, task: str | None = None) -> int:
        """How many answers are held (of ``task``, or of every task)."""
        where, args = _of_task(task)
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM answers" + where, args).fetchone()[0])

    def get(self, response_id: str) -> LabelEvent | None:
        """The answer held for an Argilla response id, if any."""
        with self._lock:
            return self._held(self._db, response_id)

    def answers(self, task: str | None = None) -> Iterator[LabelEvent]:
        """Every answer held (of ``task``, or of every task), the latest per response id, in
        the order their response ids first arrived."""
        where, args = _of_task(task)
        with self._lock:
            rows = self._db.execute(
                "SELECT event FROM answers" + where + " ORDER BY rowid", args
            ).fetchall()
        return (LabelEvent.model_validate_json(row[0]) for row in rows)

    def given_after(self, task: str, after: datetime | None) -> Given:
        """The answers of ``task`` given after ``after`` (every one when it is None)."""
        since = -(2**63) if after is None else _micros(after)
        with self._lock:
            count, oldest, newest = self._db.execute(
                "SELECT count(*), min(labelled_at_us), max(labelled_at_us) FROM answers "
                "WHERE task = ? AND labelled_at_us > ?",
                (task, since),
            ).fetchone()
        return Given(
            int(count),
            None if oldest is None else _time(oldest),
            None if newest is None else _time(newest),
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def resolve(self, task: str | None = None) -> list[ResolvedLabel]:
        """One label per document (of ``task``, or of every task), in a stable order."""
        by_document: dict[tuple[str, str], list[LabelEvent]] = {}
        for event in self.answers(task):
            by_document.setdefault((event.task, event.id), []).append(event)
        return [
            self._resolve(answers)
            for _, answers in sorted(by_document.items(), key=lambda item: item[0])
        ]

    def labelled(self, task: str | None = None) -> list[ResolvedLabel]:
        """Only the documents with an agreed label: what a model trains and is tested on."""
        return [r for r in self.resolve(task) if r.status == "labelled"]

    def _resolve(self, answers: list[LabelEvent]) -> ResolvedLabel:
        first = answers[0]
        origin = next((a.origin for a in answers if a.origin), None)
        latest = max(a.labelled_at for a in answers)
        votes_of = {a.response_id: _vote(a) for a in answers}
        submitted = [a for a in answers if votes_of[a.response_id] is not None]
        if not submitted:
            status = "discarded" if any(a.status == "discarded" for a in answers) else "waiting"
            return ResolvedLabel(
                first.id, first.text, first.task, None, status, None, len(answers), origin, latest
            )
        sets = [v for a in submitted if isinstance(v := votes_of[a.response_id], frozenset)]
        agreed_set: tuple[str, ...] | None = None
        winner: Vote | None = None
        if sets and len(sets) == len(submitted):  # multi-label answers: label by label
            agreed_set, agreement, tied = label_majority(sets)
        else:
            counts = Counter(votes_of[a.response_id] for a in submitted)
            (winner, votes), *rest = counts.most_common()
            agreement = votes / len(submitted)
            tied = bool(rest) and rest[0][1] == votes
        agreed = not tied and agreement >= self.min_agreement
        if len(submitted) < self.min_submitted:
            status = "waiting"
        else:
            status = "labelled" if agreed else "disputed"
        spans: tuple[EntityMention, ...] | None = None
        label: str | None = None
        labels: tuple[str, ...] | None = None
        if status == "labelled" and agreed_set is not None:
            labels = agreed_set
        elif status == "labelled":
            chosen = next(a for a in submitted if votes_of[a.response_id] == winner)
            label = chosen.label
            spans = tuple(chosen.spans) if chosen.spans is not None else None
        return ResolvedLabel(
            first.id,
            first.text,
            first.task,
            label,
            status,
            round(agreement, 4),
            len(answers),
            origin,
            latest,
            spans,
            labels,
        )
