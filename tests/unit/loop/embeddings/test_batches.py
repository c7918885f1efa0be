"""Fixed-width batches: every row once, padded to a width of its own length only."""

from __future__ import annotations

import numpy as np
import pytest

from loop.embeddings.batches import WIDTH_STEP, fixed_width_batches, padded, padded_width


@pytest.mark.parametrize(
    ("length", "width"), [(0, WIDTH_STEP), (1, 8), (8, 8), (9, 16), (28, 32), (129, 136)]
)
def test_a_width_is_the_length_rounded_up_to_the_step(length: int, width: int) -> None:
    assert padded_width(length) == width


def test_every_row_is_batched_once_with_rows_of_its_own_width_only() -> None:
    lengths = [3, 30, 9, 12, 31, 2, 16, 17, 5, 8]
    batches = fixed_width_batches(lengths, batch_size=2)
    rows = [row for _, batch in batches for row in batch]
    assert sorted(rows) == list(range(len(lengths)))
    for width, batch in batches:
        assert 1 <= len(batch) <= 2
        assert all(padded_width(lengths[row]) == width for row in batch)
    assert [w for w, _ in batches] == sorted(w for w, _ in batches)  # narrowest first
    # A row's width does not depend on what else is batched: alone, it gets the same one.
    for row, length in enumerate(lengths):
        width = next(w for w, batch in batches if row in batch)
        assert fixed_width_batches([length], 64) == [(width, [0])]


def test_padded_rows_carry_their_tokens_then_the_pad_and_a_mask() -> None:
    ids, mask = padded([[5, 6, 7], [9], [1, 2]], [2, 0], 8, pad=0)
    assert ids.tolist() == [[1, 2, 0, 0, 0, 0, 0, 0], [5, 6, 7, 0, 0, 0, 0, 0]]
    assert mask.sum(axis=1).tolist() == [2, 3]
    assert ids.dtype == mask.dtype == np.int64
