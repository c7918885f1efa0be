"""Turn per-token type probabilities into scored spans; shared by the token-level taggers.

Pure functions over arrays, so they are tested without a model. A token has character
offsets and a probability row over the BIO tags ``O, B-T1, I-T1, B-T2, I-T2, ...``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from loop.entities.base import Span


def bio_tags(types: Sequence[str]) -> list[str]:
    """The tag set for ``types``: ``O`` first, then ``B-`` and ``I-`` of each type."""
    tags = ["O"]
    for name in types:
        tags += [f"B-{name}", f"I-{name}"]
    return tags


@dataclass(frozen=True)
class TokenScores:
    """The tokens of one text: offsets ``(start, end)`` and probabilities over the BIO tags."""

    offsets: list[tuple[int, int]]
    probs: npt.NDArray[np.float32]


def decode(
    text: str, tokens: TokenScores, types: Sequence[str], threshold: float, floor: float
) -> tuple[list[Span], list[Span]]:
    """Spans and near misses of one text.

    Spans follow the argmax tag of each token (``B-T`` starts an entity, ``I-T`` continues
    one of the same type or starts a new one). A span's score is the mean over its tokens of
    the probability of its type (``B-T`` plus ``I-T``). Spans scoring at least ``threshold``
    are predictions; the rest, and runs of ``O`` tokens whose best type scores at least
    ``floor``, are near misses (scored the same way).
    """
    count = len(tokens.offsets)
    if count == 0:
        return [], []
    probs = tokens.probs
    type_probs = probs[:, 1::2] + probs[:, 2::2]  # (tokens, types)
    best = probs.argmax(axis=1)
    runs: list[tuple[int, int, int, bool]] = []  # first token, last token, type, argmax run
    index = 0
    while index < count:
        tag = int(best[index])
        if tag == 0:
            kind = int(type_probs[index].argmax())
            if type_probs[index, kind] < floor:
                index += 1
                continue
            last = index
            while (
                last + 1 < count
                and int(best[last + 1]) == 0
                and int(type_probs[last + 1].argmax()) == kind
                and type_probs[last + 1, kind] >= floor
            ):
                last += 1
            runs.append((index, last, kind, False))
            index = last + 1
            continue
        kind = (tag - 1) // 2
        last = index
        while last + 1 < count and int(best[last + 1]) == 2 + 2 * kind:
            last += 1
        runs.append((index, last, kind, True))
        index = last + 1
    spans: list[Span] = []
    misses: list[Span] = []
    for first, last, kind, argmax_run in runs:
        start, end = tokens.offsets[first][0], tokens.offsets[last][1]
        if start >= end:
            continue
        score = float(type_probs[first : last + 1, kind].mean())
        span = Span(start, end, types[kind], text[start:end], round(score, 6))
        if argmax_run and score >= threshold:
            spans.append(span)
        elif score >= floor:
            misses.append(span)
    return spans, misses
