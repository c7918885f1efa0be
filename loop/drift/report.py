"""One window's drift report: every method on the same pair of windows, a single verdict.

Each method is tested at ``alpha / number of methods`` (Bonferroni), so the report as a
whole raises a false alarm on at most an ``alpha`` share of the windows that did not drift.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from loop.drift.base import DriftMethod, DriftResult, NullConfig, Window
from loop.drift.embedding import DomainClassifier, NullCache
from loop.drift.entities import UnseenForms
from loop.drift.performance import EstimatedF1, MeasuredF1
from loop.drift.predictions import ConfidenceDrop, LabelMix
from loop.messages import utcnow


@dataclass(frozen=True)
class DriftConfig:
    """How sure a report must be before it says drift, and the smallest change of each
    figure worth telling a person about (a threshold never comes closer than that to the
    no-drift value, however many documents make the permutation quantile tight)."""

    alpha: float = 0.01
    """False alarms per window that did not drift, all methods together."""
    permutations: int = 2000
    seed: int = 0
    min_auc: float = 0.55
    min_label_mix: float = 0.05
    min_confidence_drop: float = 0.02
    min_f1_drop: float = 0.03
    min_unseen_rise: float = 0.05

    def null(self, methods: int) -> NullConfig:
        return NullConfig(
            alpha=self.alpha / max(1, methods), permutations=self.permutations, seed=self.seed
        )

    def methods(
        self, seen_forms: Iterable[str] = (), null_cache: NullCache | None = None
    ) -> list[DriftMethod]:
        """Every method alloop ships; each runs where the windows have what it reads. Checks
        against one reference share ``null_cache`` (the domain classifier's refits)."""
        return [
            DomainClassifier(
                min_effect=self.min_auc - 0.5,
                null_cache=null_cache if null_cache is not None else {},
            ),
            LabelMix(min_effect=self.min_label_mix),
            ConfidenceDrop(min_effect=self.min_confidence_drop),
            EstimatedF1(min_effect=self.min_f1_drop),
            MeasuredF1(min_effect=self.min_f1_drop),
            UnseenForms.of(seen_forms, min_effect=self.min_unseen_rise),
        ]


class DriftReport(BaseModel):
    """What the drift methods said about one window of documents."""

    model_config = ConfigDict(frozen=True)

    window: int
    at: datetime
    model_version: str | None = None
    documents: int
    reference_documents: int
    drift: bool
    results: list[DriftResult]

    @property
    def crossed(self) -> list[str]:
        return [r.method for r in self.results if r.crossed]

    def summary(self) -> dict[str, Any]:
        """``{"drift": ..., "<method>": {"score", "threshold", "crossed"}, ...}``."""
        out: dict[str, Any] = {"drift": self.drift, "documents": self.documents}
        for r in self.results:
            out[r.method] = {
                "score": r.score,
                "threshold": r.threshold,
                "direction": r.direction,
                "crossed": r.crossed,
            }
        return out


def applicable(methods: Sequence[DriftMethod], reference: Window, current: Window) -> int:
    """How many of ``methods`` can read these windows (the Bonferroni divisor)."""
    has_probs = reference.probabilities is not None and current.probabilities is not None
    has_gold = reference.gold is not None and current.gold is not None
    needs = {
        "embedding-auc": reference.embeddings is not None and current.embeddings is not None,
        "label-mix": has_probs,
        "confidence-drop": has_probs,
        "estimated-macro-f1": has_probs and not current.multi_label,
        "measured-macro-f1": has_probs and has_gold,
        "unseen-entities": reference.mentions is not None and current.mentions is not None,
    }
    return sum(needs.get(m.name, True) for m in methods)


def check(
    methods: Sequence[DriftMethod],
    reference: Window,
    current: Window,
    config: DriftConfig = DriftConfig(),
    *,
    window: int = 0,
    model_version: str | None = None,
    at: datetime | None = None,
) -> DriftReport:
    """Run every method on ``current`` against ``reference``."""
    null = config.null(applicable(methods, reference, current))
    results = []
    for i, method in enumerate(methods):
        found = method.check(reference, current, replace(null, seed=null.seed + i))
        if found is not None:
            results.append(found)
    return DriftReport(
        window=window,
        at=at or utcnow(),
        model_version=model_version,
        documents=current.size,
        reference_documents=reference.size,
        drift=any(r.crossed for r in results),
        results=results,
    )
