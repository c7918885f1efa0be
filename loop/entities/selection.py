"""Which documents an entity model needs people for, and why.

Per round, from a window of documents the extractor (and the task's patterns) went over:

``unseen``
    A predicted span or pattern match whose surface form never appeared in the labelled
    data (near misses do not count: most are fragments, not forms): a currency pair, cashtag or coin the model has not been taught. Each new
    form is routed once per round, however many documents repeat it.
``rare``
    A span of a type with fewer than ``rare_below`` labelled mentions.
``uncertain``
    The least sure documents: a predicted span with a low score, a near miss close to the
    threshold, or a conflict (the model and the patterns type the same text differently).
``random``
    A uniform slice, so the test set that grows from the labels stays representative.

Pure functions over spans; the scorer runs them on its window, the learning-curve benchmark
on a pool.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from loop.entities.base import Span, surface_form

STRATEGY = "entity-uncertainty"


@dataclass(frozen=True)
class EntityScored:
    """One document as the extractor and the patterns saw it."""

    id: str
    text: str
    spans: tuple[Span, ...] = ()
    """What the extractor predicted (empty before any model)."""
    near: tuple[Span, ...] = ()
    """Spans it almost predicted."""
    matches: tuple[Span, ...] = ()
    """Pattern and gazetteer hits."""


@dataclass(frozen=True)
class EntityPick:
    """A document chosen for people, with what to suggest to them."""

    id: str
    score: float
    reason: str
    strategy: str
    suggestions: tuple[Span, ...]
    unseen: tuple[str, ...] = ()
    """The new surface forms that made it ``unseen``."""


@dataclass(frozen=True)
class EntitySelectionConfig:
    """How many documents a round picks and how it weighs them."""

    batch_size: int = 10
    uncertain_below: float = 0.8
    """A predicted span scoring below this is doubtful."""
    rare_below: int = 5
    random_fraction: float = 0.1
    seed: int = 0


PATTERN_FLOOR = 0.5
"""Pattern matches scoring below this (a lower-case coin symbol) are never suggested."""


def suggestions(item: EntityScored) -> tuple[Span, ...]:
    """What people see pre-annotated: the confident pattern matches, then the model's spans
    that do not overlap them. Where both found something, the pattern's boundaries and type
    are suggested (the task's own rules; the document is flagged as a conflict anyway), so a
    form the model missed or cut short is still offered whole."""
    chosen = [m for m in item.matches if m.score >= PATTERN_FLOOR]
    for span in sorted(item.spans, key=lambda s: -s.score):
        if all(span.end <= c.start or c.end <= span.start for c in chosen):
            chosen.append(span)
    return tuple(sorted(chosen))


def unseen_forms(item: EntityScored, seen: Collection[str]) -> dict[str, float]:
    """New surface forms among a document's predicted spans and pattern matches, each with the
    best score it was found with."""
    found: dict[str, float] = {}
    for span in (*item.spans, *item.matches):
        form = surface_form(span.text)
        if form and form not in seen:
            found[form] = max(found.get(form, 0.0), span.score)
    return found


def conflicts(item: EntityScored) -> bool:
    """Whether the model and the confident patterns disagree on overlapping text: another
    type, or other boundaries (``DJPY`` where the pattern found ``AUDJPY``)."""
    return any(
        span.key != match.key and span.start < match.end and match.start < span.end
        for span in item.spans
        for match in item.matches
        if match.score >= PATTERN_FLOOR
    )


def doubt(item: EntityScored, uncertain_below: float) -> float:
    """How unsure the model is about a document, in [0, 1]: 1 for a conflict, else the larger
    of (1 - the weakest doubtful span's score) and the strongest near miss's score."""
    if conflicts(item):
        return 1.0
    weakest = [1.0 - s.score for s in item.spans if s.score < uncertain_below]
    return max([*weakest, *(s.score for s in item.near), 0.0])


def select_entities(
    items: Sequence[EntityScored],
    config: EntitySelectionConfig,
    seen: Collection[str],
    labelled_per_type: Mapping[str, int],
) -> list[EntityPick]:
    """Pick up to ``config.batch_size`` documents: a random slice first, then unseen forms,
    rare types and doubtful documents, in that order; see the module's description."""
    rng = random.Random(config.seed)
    taken: set[str] = set()
    picks: list[EntityPick] = []

    def take(item: EntityScored, score: float, reason: str, unseen: tuple[str, ...] = ()) -> None:
        taken.add(item.id)
        picks.append(
            EntityPick(item.id, round(score, 6), reason, STRATEGY, suggestions(item), unseen)
        )

    random_slots = min(len(items), round(config.batch_size * config.random_fraction))
    for item in rng.sample(list(items), random_slots):
        take(item, 0.0, "random")

    routed: set[str] = set()  # forms already routed this round
    ranked_unseen = []
    for item in items:
        new = unseen_forms(item, seen)
        if new:
            ranked_unseen.append((max(new.values()), item, new))
    ranked_unseen.sort(key=lambda row: (-row[0], row[1].id))
    for score, item, new in ranked_unseen:
        if len(picks) >= config.batch_size:
            return picks
        fresh = tuple(sorted(form for form in new if form not in routed))
        if item.id in taken or not fresh:
            continue
        routed.update(fresh)
        take(item, score, "unseen", fresh)

    rare_types = {label for label, count in labelled_per_type.items() if count < config.rare_below}
    ranked_rare = []
    for item in items:
        scores = [
            s.score for s in (*item.spans, *item.near, *item.matches) if s.label in rare_types
        ]
        if scores and item.id not in taken:
            ranked_rare.append((max(scores), item))
    ranked_rare.sort(key=lambda row: (-row[0], row[1].id))
    for score, item in ranked_rare:
        if len(picks) >= config.batch_size:
            return picks
        take(item, score, "rare")

    floor = 1.0 - config.uncertain_below
    ranked_doubt = sorted(
        ((doubt(item, config.uncertain_below), item) for item in items if item.id not in taken),
        key=lambda row: (-row[0], row[1].id),
    )
    for score, item in ranked_doubt:
        if len(picks) >= config.batch_size or score < floor:
            break
        take(item, score, "uncertain")
    return picks
