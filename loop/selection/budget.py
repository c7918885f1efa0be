"""The labeling budget: at most ``budget`` records wait in Argilla at once.

When the queue is full, a better candidate replaces the weakest pending record that nobody
has started (no response, not even a draft); a record someone is working on is never taken
away. Candidates already in the queue are updated in place (same record id), which costs no
budget. Records of the evaluation sample (``kept``) are outside the budget: they are always
written and never replaced, because the frozen test set is only uniform over the stream if
every document drawn for it reaches people.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Pending:
    """A record waiting in Argilla: its document id, selection score, and whether a person
    has started it (a draft or a partial answer)."""

    id: str
    score: float
    started: bool = False
    kept: bool = False


@dataclass(frozen=True)
class Offer:
    """A candidate to place: its document id and selection score (higher is better)."""

    id: str
    score: float
    kept: bool = False


@dataclass
class Plan:
    """What to do: records to write (new or updated), records to remove, offers turned away."""

    write: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


def plan(pending: Iterable[Pending], offers: Sequence[Offer], budget: int) -> Plan:
    """Decide which offers enter the queue and which pending records they push out."""
    if budget < 1:
        raise ValueError("the budget must be at least 1")
    queue = {p.id: p for p in pending if not p.kept}
    kept = {p.id for p in pending if p.kept}
    result = Plan()
    best: dict[str, Offer] = {}
    for offer in offers:  # the same document twice in one batch: keep its best score
        if offer.id not in best or offer.score > best[offer.id].score:
            best[offer.id] = offer
    for offer in sorted(best.values(), key=lambda o: (-o.score, o.id)):
        if offer.kept or offer.id in kept:
            result.write.append(offer.id)
            continue
        if offer.id in queue:
            result.write.append(offer.id)
            queue[offer.id] = Pending(offer.id, offer.score, queue[offer.id].started)
            continue
        if len(queue) < budget:
            result.write.append(offer.id)
            queue[offer.id] = Pending(offer.id, offer.score)
            continue
        untouched = [p for p in queue.values() if not p.started]
        weakest = min(untouched, key=lambda p: (p.score, p.id), default=None)
        if weakest is None or weakest.score >= offer.score:
            result.rejected.append(offer.id)
            continue
        del queue[weakest.id]
        if weakest.id in result.write:
            result.write.remove(weakest.id)
        else:
            result.remove.append(weakest.id)
        result.write.append(offer.id)
        queue[offer.id] = Pending(offer.id, offer.score)
    return result
