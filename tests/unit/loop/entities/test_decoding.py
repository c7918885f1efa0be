from __future__ import annotations

import numpy as np

from loop.entities.decoding import TokenScores, bio_tags, decode, merge_windows

TYPES = ["LOC", "PER"]  # tags: O, B-LOC, I-LOC, B-PER, I-PER


def tokens(text: str, rows: list[list[float]]) -> TokenScores:
    offsets, position = [], 0
    for word in text.split(" "):
        offsets.append((position, position + len(word)))
        position += len(word) + 1
    return TokenScores(offsets, np.asarray(rows, dtype=np.float32))


def test_tags() -> None:
    assert bio_tags(TYPES) == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


def test_spans_follow_argmax_and_score_by_mean_type_probability() -> None:
    text = "São Paulo é Zoë"
    rows = [
        [0.1, 0.8, 0.1, 0.0, 0.0],  # B-LOC
        [0.2, 0.0, 0.8, 0.0, 0.0],  # I-LOC
        [0.9, 0.0, 0.0, 0.1, 0.0],  # O
        [0.3, 0.0, 0.0, 0.6, 0.1],  # B-PER (at the end of the text)
    ]
    spans, misses = decode(text, tokens(text, rows), TYPES, threshold=0.5, floor=0.2)
    assert [(s.text, s.label) for s in spans] == [("São Paulo", "LOC"), ("Zoë", "PER")]
    assert spans[0].score == 0.85
    assert abs(spans[1].score - 0.7) < 1e-6
    assert misses == []


def test_near_misses_are_o_tokens_with_a_likely_type_and_weak_spans() -> None:
    text = "ok Genève now"
    rows = [
        [0.95, 0.05, 0.0, 0.0, 0.0],
        [0.55, 0.3, 0.15, 0.0, 0.0],  # O, but LOC at 0.45
        [0.99, 0.0, 0.0, 0.0, 0.01],
    ]
    spans, misses = decode(text, tokens(text, rows), TYPES, threshold=0.5, floor=0.2)
    assert spans == []
    assert [(m.text, m.label, round(m.score, 2)) for m in misses] == [("Genève", "LOC", 0.45)]


def test_no_tokens_no_spans() -> None:
    empty = TokenScores([], np.zeros((0, 5), dtype=np.float32))
    assert decode("", empty, TYPES, 0.5, 0.1) == ([], [])


def test_windows_merge_into_sorted_tokens_and_the_first_window_wins() -> None:
    def rows(*values: float) -> np.ndarray:
        return np.asarray([[v, 1.0 - v] for v in values], dtype=np.float32)

    # Text 0 spans two overlapping windows (rows 0 and 2); text 1 has one; text 2 has only
    # special tokens. (0, 0) marks a special token.
    owners = [0, 1, 0, 2]
    offsets = [
        [(0, 0), (0, 3), (4, 7), (8, 9), (0, 0)],
        [(0, 0), (0, 2), (0, 0)],
        [(0, 0), (4, 7), (8, 9), (10, 14), (0, 0)],
        [(0, 0), (0, 0)],
    ]
    probs = [rows(0, 0.1, 0.2, 0.3, 0), rows(0, 0.5, 0), rows(0, 0.9, 0.9, 0.4, 0), rows(0, 0)]
    merged = merge_windows(3, owners, offsets, probs)
    assert merged[0].offsets == [(0, 3), (4, 7), (8, 9), (10, 14)]
    assert np.allclose(merged[0].probs[:, 0], [0.1, 0.2, 0.3, 0.4])  # shared tokens: window 0
    assert merged[1].offsets == [(0, 2)] and np.allclose(merged[1].probs[:, 0], [0.5])
    assert merged[2].offsets == [] and merged[2].probs.shape == (0, 2)
    assert all(m.probs.dtype == np.float32 for m in merged)
