"""Entity drift: the share of tagged mentions whose surface form no labelled span had.

A new coin or ticker in the stream shows here first: its mentions are tagged (by the
patterns or the model) but no person ever labelled that form. The forms people labelled are
the entity version's training forms; compared case-insensitively."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from loop.drift.base import DriftResult, NullConfig, Window, permuted_sums, result


def form(text: str) -> str:
    return " ".join(text.casefold().split())


@dataclass(frozen=True)
class UnseenForms:
    """The share of mentions with a surface form outside ``seen``."""

    seen: frozenset[str] = field(default_factory=frozenset)
    name: str = "unseen-entities"
    min_effect: float = 0.05

    @classmethod
    def of(cls, forms: Iterable[str], min_effect: float = 0.05) -> UnseenForms:
        return cls(frozenset(form(f) for f in forms), min_effect=min_effect)

    def check(self, reference: Window, current: Window, null: NullConfig) -> DriftResult | None:
        if reference.mentions is None or current.mentions is None:
            return None

        def rows(window: Window) -> np.ndarray:
            assert window.mentions is not None
            return np.array(
                [
                    [len(found), sum(form(f) not in self.seen for f in found)]
                    for found in window.mentions
                ],
                dtype=np.float64,
            ).reshape(-1, 2)

        sums = permuted_sums(rows(reference), rows(current), null)
        if sums.current[0] == 0 or sums.reference[0] == 0:
            return None
        with np.errstate(invalid="ignore", divide="ignore"):
            drawn = sums.null_current[:, 1] / sums.null_current[:, 0]
        before = float(sums.reference[1] / sums.reference[0])
        return result(
            self.name,
            float(sums.current[1] / sums.current[0]),
            drawn,
            null,
            "above",
            self.min_effect,
            base=before,
            reference=before,
            detail={"mentions": float(sums.current[0])},
        )
