"""What is served: the model's spans and the pattern matches, merged by one rule.

A version trained on a few documents can mistype a currency pair or miss a coin that the
gazetteers know, so the patterns keep answering beside it. One pure function decides; the
scorer's tags and the API's ``/v1/entities`` and ``/v1/predict`` go through it, and so can a
round that scores a version as it will be served.

``gazetteer-first`` (the default), over spans that may overlap:

1. Where a model span and a pattern match agree (the same offsets and type), the model's span
   is served (source ``model``, its own score): the version found it.
2. A pattern match of a gazetteer entry (source ``gazetteer``: a currency pair, a coin, a
   listed ticker) is served, and every model span overlapping it is dropped, whatever its
   score: another type or other boundaries lose to the gazetteer.
3. A model span and a regex-only match (source ``pattern``: a cashtag no gazetteer lists)
   that overlap: the higher score is served, the match on a tie.
4. A span that overlaps nothing else is served.

``off``: the model's spans alone (the patterns then tag only while no version serves).

Every span comes out with its source: model spans that have none get ``model``; a pattern
match without one counts as regex-only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from enum import StrEnum

from loop.entities.base import GAZETTEER, MODEL, PATTERN, Span, keep_apart


class MergeRule(StrEnum):
    """How the served version's spans and the pattern matches combine."""

    GAZETTEER_FIRST = "gazetteer-first"
    OFF = "off"


def merge(
    model_spans: Sequence[Span],
    pattern_spans: Sequence[Span],
    rule: MergeRule = MergeRule.GAZETTEER_FIRST,
) -> list[Span]:
    """The spans to serve, sorted by offset, none overlapping another; see the module."""
    model = [s if s.source else replace(s, source=MODEL) for s in model_spans]
    if rule is MergeRule.OFF:
        return sorted(model)
    found = {span.key for span in model}
    matches = [
        s if s.source else replace(s, source=PATTERN) for s in pattern_spans if s.key not in found
    ]
    return keep_apart([*model, *matches], key=_rank)


def _rank(span: Span) -> tuple[bool, float, bool, int, int]:
    """Gazetteer matches first; then by score, a regex-only match before a model span on a
    tie; then the longer, then the earlier."""
    return (
        span.source != GAZETTEER,
        -span.score,
        span.source == MODEL,
        span.start - span.end,
        span.start,
    )
