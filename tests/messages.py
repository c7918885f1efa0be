"""Messages that several tests build the same way."""

from __future__ import annotations

from collections.abc import Sequence

from loop.messages import Candidate, EntityMention


def entity_candidate(
    id: str,
    text: str,
    *,
    score: float = 0.9,
    reason: str = "unseen",
    spans: Sequence[EntityMention] = (),
) -> Candidate:
    """A candidate of the entity task as the scorer sends one before any entity version is
    promoted: picked by entity uncertainty, the patterns' ``spans`` suggested."""
    return Candidate(
        id=id,
        text=text,
        task="entities",
        model_version="patterns",
        strategy="entity-uncertainty",
        score=score,
        reason=reason,
        spans=list(spans),
    )
