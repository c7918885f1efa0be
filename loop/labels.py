"""The label store: every answer people gave, and the label each document ends up with.

Answers arrive as :class:`~loop.messages.LabelEvent` (from Argilla's webhooks or from a poll
that catches up). The store keeps the latest answer per Argilla response id, so a re-delivered
webhook or a re-polled response changes nothing, and an edited response replaces the old one.
:meth:`LabelStore.resolve` turns the answers into one label per document: the agreed label
when enough people submitted one, with the share of annotators who agree. A multi-label answer
(a set of labels) is resolved label by label: a label applies when more than half of the
annotators chose it, and the agreement is the mean, over the labels anybody chose, of the
share of annotators on the winning side of that label.

The store is an append-only JSON Lines file: a crash loses at most the line being written.
Reading skips a torn line, and the next write starts on a fresh line after it, so the fragment
never swallows a later answer.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

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


class LabelStore:
    """All answers for a project, in one JSON Lines file.

    ``min_submitted`` is how many submitted answers a document needs before it counts (Argilla's
    task distribution ``min_submitted``); ``min_agreement`` is the share of them that must
    agree on one label, otherwise the document is ``disputed`` and not trained on.
    """

    def __init__(self, path: Path, min_submitted: int = 1, min_agreement: float = 0.5) -> None:
        if min_submitted < 1:
            raise ValueError("min_submitted must be at least 1")
        self.path = path
        self.min_submitted = min_submitted
        self.min_agreement = min_agreement
        self._answers: dict[str, LabelEvent] = {}
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    event = decode(line, LabelEvent)
                except MessageError as exc:
                    logger.warning("%s:%d: skipped: %s", self.path, number, exc)
                    continue
                self._keep(event)

    def _keep(self, event: LabelEvent) -> bool:
        held = self._answers.get(event.response_id)
        if held is not None and (held.same_answer(event) or not _newer(held, event)):
            return False
        self._answers[event.response_id] = event
        return True

    def add(self, events: Iterable[LabelEvent]) -> int:
        """Record answers; return how many changed the store (re-deliveries do not)."""
        return len(self.add_new(events))

    def add_new(self, events: Iterable[LabelEvent]) -> list[LabelEvent]:
        """Record answers; return those that changed the store (re-deliveries do not)."""
        fresh = [event for event in events if self._keep(event)]
        if not fresh:
            return []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        torn = self._ends_torn()
        with self.path.open("ab") as handle:
            if torn:  # a crash left a fragment: start on a line of our own, not after it
                handle.write(b"\n")
            for event in fresh:
                handle.write(event.model_dump_json(by_alias=True).encode("utf-8") + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        return fresh

    def _ends_torn(self) -> bool:
        """Whether the file ends in the middle of a line (a write cut short by a crash)."""
        try:
            with self.path.open("rb") as handle:
                if handle.seek(0, os.SEEK_END) == 0:
                    return False
                handle.seek(-1, os.SEEK_END)
                return handle.read(1) != b"\n"
        except FileNotFoundError:
            return False

    def __len__(self) -> int:
        return len(self._answers)

    def get(self, response_id: str) -> LabelEvent | None:
        """The answer held for an Argilla response id, if any."""
        return self._answers.get(response_id)

    def answers(self) -> Iterator[LabelEvent]:
        """Every answer held, the latest per response id."""
        return iter(self._answers.values())

    def resolve(self, task: str | None = None) -> list[ResolvedLabel]:
        """One label per document (of ``task``, or of every task), in a stable order."""
        by_document: dict[tuple[str, str], list[LabelEvent]] = {}
        for event in self._answers.values():
            if task is None or event.task == task:
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
