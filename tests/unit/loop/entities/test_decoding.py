from __future__ import annotations

import numpy as np
import pytest

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


# The MiniLM tokenizer's subwords of the demo's sentence (offsets as its offset mapping gives).
SENTENCE = "USDJPY rallies as $AAPL soars after earnings beat; ETH flat"
SUBWORDS = [
    (0, 3), (3, 4), (4, 6),  # usd ##j ##py
    (7, 14), (15, 17),  # rallies as
    (18, 19), (19, 21), (21, 23),  # $ aa ##pl
    (24, 26), (26, 29), (30, 35), (36, 44), (45, 49), (49, 50),  # so ##ars ... beat ;
    (51, 53), (53, 54),  # et ##h
    (55, 59),  # flat
]  # fmt: skip
FIN = ["CRYPTO", "FOREX", "STOCK"]  # tags: O, B-CRYPTO, I-CRYPTO, B-FOREX, I-FOREX, B-STOCK, ...
OUT = [0.9, 0.02, 0.02, 0.02, 0.02, 0.01, 0.01]


def subword_scores(tagged: dict[int, list[float]]) -> TokenScores:
    rows = [tagged.get(index, OUT) for index in range(len(SUBWORDS))]
    return TokenScores(SUBWORDS, np.asarray(rows, dtype=np.float32))


def test_a_span_cut_inside_a_word_is_widened_to_the_whole_word_and_rescored() -> None:
    # $ and aa are STOCK, ##pl is O: the argmax run reads "$AA"; served, it is "$AAPL".
    scores = subword_scores(
        {
            5: [0.05, 0.0, 0.0, 0.0, 0.0, 0.9, 0.05],  # $     B-STOCK
            6: [0.1, 0.0, 0.0, 0.0, 0.0, 0.1, 0.8],  # aa    I-STOCK
            7: [0.6, 0.0, 0.0, 0.0, 0.0, 0.1, 0.3],  # ##pl  O (STOCK 0.4)
        }
    )
    spans, misses = decode(SENTENCE, scores, FIN, threshold=0.5, floor=0.1)
    (span,) = spans
    assert (span.start, span.end, span.label, span.text) == (18, 23, "STOCK", "$AAPL")
    assert span.score == pytest.approx((0.95 + 0.9 + 0.4) / 3, abs=1e-6)  # over all 3 subwords
    assert misses == [], "the O subword inside the word is part of the span, not a near miss"


def test_a_span_starting_inside_a_word_is_widened_to_its_start() -> None:
    # ##j ##py are FOREX, usd is O: "JPY" out of "USDJPY" becomes "USDJPY".
    scores = subword_scores(
        {
            0: [0.5, 0.0, 0.0, 0.2, 0.3, 0.0, 0.0],  # usd  O (FOREX 0.5)
            1: [0.1, 0.0, 0.0, 0.8, 0.1, 0.0, 0.0],  # ##j  B-FOREX
            2: [0.1, 0.0, 0.0, 0.0, 0.9, 0.0, 0.0],  # ##py I-FOREX
        }
    )
    spans, _ = decode(SENTENCE, scores, FIN, threshold=0.5, floor=0.1)
    assert [(s.text, s.label, s.start, s.end) for s in spans] == [("USDJPY", "FOREX", 0, 6)]


def test_a_widened_span_that_falls_below_the_threshold_is_a_near_miss() -> None:
    # "et" alone is CRYPTO at 0.55, but "##h" barely: over the whole word "ETH" it is 0.35.
    scores = subword_scores(
        {
            14: [0.45, 0.5, 0.05, 0.0, 0.0, 0.0, 0.0],  # et  B-CRYPTO (0.55)
            15: [0.85, 0.1, 0.05, 0.0, 0.0, 0.0, 0.0],  # ##h O (0.15)
        }
    )
    spans, misses = decode(SENTENCE, scores, FIN, threshold=0.5, floor=0.1)
    assert spans == []
    assert [(m.text, m.label, round(m.score, 3)) for m in misses] == [("ETH", "CRYPTO", 0.35)]


def test_two_runs_cutting_one_word_give_one_span_of_the_likelier_type() -> None:
    # "$AA" as STOCK and "PL" as CRYPTO: both widen to "$AAPL"; STOCK scores higher over it.
    scores = subword_scores(
        {
            5: [0.1, 0.0, 0.0, 0.0, 0.0, 0.9, 0.0],  # $     B-STOCK
            6: [0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.9],  # aa    I-STOCK
            7: [0.1, 0.5, 0.0, 0.0, 0.0, 0.4, 0.0],  # ##pl  B-CRYPTO
        }
    )
    spans, misses = decode(SENTENCE, scores, FIN, threshold=0.5, floor=0.1)
    assert [(s.text, s.label) for s in spans] == [("$AAPL", "STOCK")]
    assert all(m.end <= 18 or m.start >= 23 for m in misses), "no near miss inside the span"


def test_punctuation_at_the_edges_of_a_span_is_left_out() -> None:
    # "beat ;" tagged as STOCK: the span is the word, not the semicolon after it.
    scores = subword_scores(
        {
            12: [0.1, 0.0, 0.0, 0.0, 0.0, 0.9, 0.0],  # beat B-STOCK
            13: [0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.9],  # ;    I-STOCK
        }
    )
    spans, _ = decode(SENTENCE, scores, FIN, threshold=0.5, floor=0.1)
    assert [(s.text, s.start, s.end) for s in spans] == [("beat", 45, 49)]
