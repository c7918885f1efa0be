"""When the trainer runs a round: enough new answers for a task, or answers that waited.

Each task (the classifier's, and the entity task when enabled) has its own
:class:`RetrainPolicy`; :class:`RoundSchedule` feeds them with what the trainer stored and runs
the rounds that are due, one task after the other.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


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

    def due(self, now: float) -> bool:
        if self.new_labels == 0 or self.first_new_at is None:
            return False
        waited = now - self.first_new_at
        return self.new_labels >= self.min_new_labels or waited >= self.max_wait_s

    def reset(self) -> None:
        self.new_labels, self.first_new_at = 0, None


@dataclass
class RoundSchedule:
    """The tasks' policies, and ``run_round(task)`` for the rounds that are due."""

    policies: dict[str, RetrainPolicy]
    run_round: Callable[[str], object]
    clock: Callable[[], float] = time.monotonic
    counted: Counter[str] = field(default_factory=Counter)

    def tick(self, stored: Counter[str]) -> None:
        """Between two batches: ``stored`` counts the new answers stored so far, per task."""
        now = self.clock()
        for task, policy in self.policies.items():
            policy.saw(stored[task] - self.counted[task], now)
            self.counted[task] = stored[task]
        for task, policy in self.policies.items():
            if policy.due(self.clock()):
                logger.info("retraining %s: %d new label(s)", task, policy.new_labels)
                policy.reset()
                self.run_round(task)
