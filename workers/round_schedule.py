"""When the trainer runs a round: enough new answers for a task, or answers that waited.

Each task (the classifier's, and the entity task when enabled) has its own
:class:`RetrainPolicy`; :class:`RoundSchedule` feeds them with what the trainer stored and runs
the rounds that are due, one task after the other.

The trainer counts the answers it stores, and that count is lost when it stops. So at start,
and every ``check_every_s`` seconds, the schedule also looks at the :class:`Backlog`: the
stored answers of each task that no round has covered yet (given after the newest answer the
task's latest version was trained on). They count as new answers that have waited since they
were given: after a restart, answers below the threshold still start a round once they waited
``max_wait_s``. A round that failed is tried again ``max_wait_s`` later, new answer or not.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from loop.labels import LabelStore
from loop.registry import ModelRegistry

logger = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class RetrainPolicy:
    """When a round is due: enough new labels, or new labels that waited long enough."""

    min_new_labels: int
    max_wait_s: float
    new_labels: int = 0
    first_new_at: float | None = None

    def saw(self, count: int, now: float) -> None:
        if count > 0:
            self.new_labels += count
            if self.first_new_at is None:
                self.first_new_at = now

    def caught_up(self, count: int, since: float) -> None:
        """``count`` stored answers no round covered, the oldest waiting since ``since``; the
        answers :meth:`saw` counted may be among them."""
        if count <= 0:
            return
        self.new_labels = max(self.new_labels, count)
        if self.first_new_at is None or since < self.first_new_at:
            self.first_new_at = since

    def due(self, now: float) -> bool:
        if self.new_labels == 0 or self.first_new_at is None:
            return False
        waited = now - self.first_new_at
        return self.new_labels >= self.min_new_labels or waited >= self.max_wait_s

    def reset(self) -> None:
        self.new_labels, self.first_new_at = 0, None


def covered_until(registry: ModelRegistry) -> datetime | None:
    """When the newest answer behind the registry's latest version was given: its card's
    ``newest_label_at`` (a round's), else when it was made (a seed model: its labels were
    stored before it). ``None``: no version, nothing is covered."""
    latest = registry.latest()
    if latest is None:
        return None
    card = registry.card(latest)
    newest = card.counts.get("newest_label_at")
    return datetime.fromisoformat(newest) if isinstance(newest, str) else card.created_at


@dataclass
class Backlog:
    """The answers of each task in the store that no round has covered: given after
    ``covered[task]`` (every answer when it is ``None``)."""

    store: LabelStore
    covered: dict[str, datetime | None]

    @classmethod
    def of(cls, store: LabelStore, registries: Mapping[str, ModelRegistry]) -> Backlog:
        """What each task's registry covers, read once (at start)."""
        return cls(store, {task: covered_until(r) for task, r in registries.items()})

    def pending(self, task: str) -> tuple[int, datetime | None]:
        """How many answers wait, and when the oldest of them was given."""
        waiting = self.store.given_after(task, self.covered.get(task))
        return waiting.count, waiting.oldest

    def newest(self, task: str) -> datetime | None:
        """When the newest answer of ``task`` was given; a round that starts now covers it."""
        since = self.covered.get(task)
        return self.store.given_after(task, since).newest or since

    def cover(self, task: str, until: datetime | None) -> None:
        if until is not None:
            self.covered[task] = until


@dataclass
class RoundSchedule:
    """The tasks' policies, and ``run_round(task)`` for the rounds that are due; it returns
    whether the round ran to its end (a version, or a skip), False when it failed."""

    policies: dict[str, RetrainPolicy]
    run_round: Callable[[str], bool]
    backlog: Backlog | None = None
    check_every_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], datetime] = _now
    counted: Counter[str] = field(default_factory=Counter)
    retry_at: dict[str, float] = field(default_factory=dict)
    checked_at: float | None = None

    def tick(self, stored: Counter[str]) -> None:
        """Between two batches: ``stored`` counts the new answers stored so far, per task."""
        now = self.clock()
        for task, policy in self.policies.items():
            policy.saw(stored[task] - self.counted[task], now)
            self.counted[task] = stored[task]
        if self.backlog is not None and (
            self.checked_at is None or now - self.checked_at >= self.check_every_s
        ):
            self.checked_at = now
            self._catch_up(self.backlog, now)
        for task, policy in self.policies.items():
            if policy.due(self.clock()):
                logger.info("retraining %s: %d new label(s)", task, policy.new_labels)
                self._run(task, policy)

    def _catch_up(self, backlog: Backlog, now: float) -> None:
        wall = self.wall()
        for task, policy in self.policies.items():
            if now < self.retry_at.get(task, now):
                continue
            count, oldest = backlog.pending(task)
            if count and policy.new_labels < count:
                logger.info("%s: %d stored answer(s) no round has covered", task, count)
            waited = max(0.0, (wall - oldest).total_seconds()) if oldest else 0.0
            policy.caught_up(count, now - waited)

    def _run(self, task: str, policy: RetrainPolicy) -> None:
        newest = self.backlog.newest(task) if self.backlog is not None else None
        policy.reset()
        if self.run_round(task):
            self.retry_at.pop(task, None)
            if self.backlog is not None:
                self.backlog.cover(task, newest)
        else:
            self.retry_at[task] = self.clock() + policy.max_wait_s
