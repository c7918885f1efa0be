"""Turn per-token type probabilities into scored spans; shared by the token-level taggers.

Pure functions over arrays, so they are tested without a model. A token (a subword) has
character offsets and a probability row over the BIO tags ``O, B-T1, I-T1, B-T2, I-T2, ...``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from loop.entities.alignment import Tokens
from loop.entities.base import Span, keep_apart, overlap


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
    one of the same type or starts a new one), widened to whole words of ``text``
    (:mod:`loop.entities.alignment`: ``$AA`` out of ``$AAPL`` becomes ``$AAPL``). A span's
    score is the mean, over every token inside the widened span, of the probability of its
    type (``B-T`` plus ``I-T``). Spans scoring at least ``threshold`` are predictions (of two
    that overlap once widened, the higher-scored, then the longer); the rest, and runs of ``O``
    tokens whose best type scores at least ``floor``, are near misses (widened and scored the
    same way), unless they overlap a prediction.
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
    words = Tokens.of(text)
    starts = [start for start, _ in tokens.offsets]
    found: list[tuple[Span, bool]] = []
    for first, last, kind, argmax_run in runs:
        covered = words.cover(tokens.offsets[first][0], tokens.offsets[last][1])
        if covered is None:
            continue
        start, end = covered
        # Every subword of the widened span counts, also those the run left out.
        lo, hi = bisect_left(starts, start), bisect_left(starts, end)
        score = float(type_probs[lo:hi, kind].mean()) if hi > lo else 0.0
        span = Span(start, end, types[kind], text[start:end], round(score, 6))
        found.append((span, argmax_run and score >= threshold))
    spans = keep_apart(span for span, predicted in found if predicted)
    misses: dict[tuple[int, int, str], Span] = {}
    for span, _ in found:
        if span.score < floor or any(overlap(span, kept) for kept in spans):
            continue
        if span.key not in misses or span.score > misses[span.key].score:
            misses[span.key] = span
    return spans, sorted(misses.values())


def merge_windows(
    count: int,
    owners: Sequence[int],
    offsets: Sequence[Sequence[tuple[int, int]]],
    probs: Sequence[npt.NDArray[np.float32]],
) -> list[TokenScores]:
    """The tokens of each of ``count`` texts, gathered from the windows they were tagged in.

    Window ``row`` belongs to text ``owners[row]``; its tokens have character offsets
    ``offsets[row]`` and probability rows ``probs[row]``. Special tokens (empty offsets) are
    dropped; a token that two overlapping windows share keeps the probabilities of the first
    window; each text's tokens come out sorted by offsets.
    """
    rows_of: list[list[int]] = [[] for _ in range(count)]
    for row, owner in enumerate(owners):
        rows_of[owner].append(row)
    tags = probs[0].shape[1] if len(probs) else 1
    merged: list[TokenScores] = []
    for rows in rows_of:
        if not rows:
            merged.append(TokenScores([], np.zeros((0, tags), np.float32)))
            continue
        where = np.concatenate([np.asarray(offsets[row], np.int64).reshape(-1, 2) for row in rows])
        scores = np.concatenate([probs[row] for row in rows])
        real = where[:, 0] < where[:, 1]
        where, scores = where[real], scores[real]
        if len(where):
            # One key per (start, end), ordered as the pairs are; np.unique keeps the first
            # occurrence of each key, which is the earliest window's.
            keys = where[:, 0] * (int(where[:, 1].max()) + 1) + where[:, 1]
            _, first = np.unique(keys, return_index=True)
            where, scores = where[first], scores[first]
        pairs = [(int(start), int(end)) for start, end in where.tolist()]
        merged.append(TokenScores(pairs, scores.astype(np.float32, copy=False)))
    return merged
