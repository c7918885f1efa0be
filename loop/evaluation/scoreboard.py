"""Every version on the same test set: what makes curve points and deltas comparable.

The test set grows as people label the evaluation sample (:mod:`loop.training.split`). A score read on
yesterday's test set cannot be compared with one read on today's, so each round brings every
version of the task (the seed model, the versions that were not promoted, and for entities the
patterns that served before the first model) onto the current test set before the gate decides:
a version whose stored evaluation was read on another test set is scored again. With the
embedding cache that costs an encoder pass over the new test texts only, per body.

Each version's ``metrics.json`` holds its current ``evaluation`` and ``predictions`` with the
``test_set`` they were read on (size, origins, fingerprint); what its own round decided stays
under ``gate``.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from loop.errors import AlloopError
from loop.labels import ResolvedLabel
from loop.registry import ModelRegistry

logger = logging.getLogger(__name__)

Scores = tuple[BaseModel, Sequence[BaseModel]]
"""An evaluation and its per-document predictions."""


@dataclass(frozen=True)
class TestSet:
    """The frozen test set as it stands: its documents and a fingerprint of their answers."""

    items: tuple[ResolvedLabel, ...]
    fingerprint: str
    origins: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, items: Sequence[ResolvedLabel]) -> TestSet:
        ordered = tuple(sorted(items, key=lambda item: item.id))
        digest = hashlib.blake2b(digest_size=12)
        for item in ordered:
            spans = sorted((m.start, m.end, m.label) for m in item.spans or ())
            digest.update(repr((item.id, item.text, item.target, spans)).encode())
        origins = Counter(item.origin or "unknown" for item in ordered)
        return cls(ordered, digest.hexdigest(), dict(sorted(origins.items())))

    @property
    def size(self) -> int:
        return len(self.items)

    def describe(self) -> dict[str, Any]:
        """What an evaluation says about the documents it stands on."""
        return {"size": self.size, "origins": self.origins, "fingerprint": self.fingerprint}


def is_current(metrics: dict[str, Any] | None, test: TestSet) -> bool:
    """Whether stored metrics were read on ``test``."""
    return bool(metrics) and (metrics or {}).get("test_set", {}).get("fingerprint") == (
        test.fingerprint
    )


def scored(metrics: dict[str, Any], scores: Scores, test: TestSet) -> dict[str, Any]:
    """``metrics`` with ``scores`` as the current evaluation on ``test``."""
    evaluation, predictions = scores
    return {
        **metrics,
        "evaluation": evaluation.model_dump(),
        "predictions": [row.model_dump() for row in predictions],
        "test_set": test.describe(),
    }


def rescore(
    registry: ModelRegistry,
    test: TestSet,
    score: Callable[[str], Scores],
    *,
    baseline: tuple[str, Callable[[], Scores]] | None = None,
) -> list[str]:
    """Score every version (and the ``baseline``, a name and how to score it) whose current
    evaluation was read on another test set; return the names scored again. A version that
    cannot be scored any more (another kind of model, unreadable weights) keeps its old
    evaluation and is left out of comparable curves."""
    if not test.items:
        return []
    done = []
    for version in registry.versions():
        try:
            metrics = registry.card(version).metrics or {}
            if is_current(metrics, test):
                continue
            registry.attach_metrics(version, scored(metrics, score(version), test))
        except AlloopError as exc:
            logger.warning("cannot score %s on the current test set: %s", version, exc)
            continue
        done.append(version)
    if baseline is not None:
        name, run = baseline
        held = registry.baseline()
        if not (held and held.get("name") == name and is_current(held, test)):
            registry.attach_baseline(scored({"name": name}, run(), test))
            done.append(name)
    if done:
        logger.info("scored %s on the current test set (%d documents)", ", ".join(done), test.size)
    return done


def current_scores(
    registry: ModelRegistry, name: str, test: TestSet
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """The evaluation and predictions of a version (or of the baseline, by its name) on
    ``test``, if it was scored on it."""
    held = registry.baseline()
    if held is not None and held.get("name") == name:
        metrics: dict[str, Any] | None = held
    else:
        try:
            metrics = registry.card(name).metrics
        except AlloopError:
            return None
    if not metrics or not is_current(metrics, test):
        return None
    return metrics["evaluation"], metrics["predictions"]
