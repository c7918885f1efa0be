"""Whole tokens: a predicted span never starts or ends inside a word.

A model tags subwords (the MiniLM tagger) or its own tokens (spaCy splits ``$AAPL`` into
``$`` and ``AAPL``), so its spans can cut a word: ``$AA`` out of ``$AAPL``. Every span a model
predicts is therefore widened to the tokens of the text defined here.

A *token* is one of:

- a **word**: a run of word characters (letters, digits, combining marks, ``_``), with the
  ``$`` of a cashtag in front if there is one, and further runs joined to it by one of the
  connectors ``/ - . &`` between two word characters: ``$AAPL``, ``USDJPY``, ``EUR/USD``,
  ``BTC-USD``, ``$BRK.B``, ``S&P``, ``Zürich``;
- any other character that is not whitespace, alone: punctuation, symbols, emoji.

So the tokens are the runs of non-whitespace with punctuation split off, except the ``$`` that
opens a cashtag and the connectors inside a word: ``$AAPL's`` is ``$AAPL``, ``'``, ``s``;
``#bitcoin`` is ``#``, ``bitcoin``; ``beat;`` is ``beat``, ``;``; ``USD / JPY`` is three tokens.

:meth:`Tokens.cover` widens a span to every token it touches, then drops the punctuation
tokens at its two ends: the result starts where a word starts and ends where a word ends,
with whatever lies between (``USD / JPY`` stays whole). A span that touches no word covers
nothing and is dropped.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, replace

from loop.entities.base import Span

_MARKS = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
_RUN = rf"[\w{_MARKS}]+"
_TOKEN = re.compile(rf"(?P<word>\$?{_RUN}(?:[/\-.&]{_RUN})*)|\S")


@dataclass(frozen=True)
class Tokens:
    """The tokens of one text, in order: character offsets and whether each is a word."""

    starts: list[int]
    ends: list[int]
    words: list[bool]

    @classmethod
    def of(cls, text: str) -> Tokens:
        starts, ends, words = [], [], []
        for match in _TOKEN.finditer(text):
            starts.append(match.start())
            ends.append(match.end())
            words.append(match.group("word") is not None)
        return cls(starts, ends, words)

    def cover(self, start: int, end: int) -> tuple[int, int] | None:
        """The offsets of the whole tokens that ``[start, end)`` touches, without punctuation
        tokens at either end; None when no word is among them."""
        first = bisect_right(self.ends, start)  # the first token ending after start
        last = bisect_left(self.starts, end) - 1  # the last token starting before end
        while first <= last and not self.words[first]:
            first += 1
        while last >= first and not self.words[last]:
            last -= 1
        if first > last:
            return None
        return self.starts[first], self.ends[last]


def align(text: str, spans: Iterable[Span]) -> list[Span]:
    """Each span widened to whole tokens (:meth:`Tokens.cover`) with its type and score kept;
    spans touching no word are dropped, and of spans that become the same (offsets and type)
    the best-scored one stays. Sorted by offset."""
    tokens = Tokens.of(text)
    best: dict[tuple[int, int, str], Span] = {}
    for span in spans:
        covered = tokens.cover(span.start, span.end)
        if covered is None:
            continue
        start, end = covered
        widened = replace(span, start=start, end=end, text=text[start:end])
        kept = best.get(widened.key)
        if kept is None or widened.score > kept.score:
            best[widened.key] = widened
    return sorted(best.values())
