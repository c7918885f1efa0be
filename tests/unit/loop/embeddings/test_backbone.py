"""Sentence embeddings from the packaged MiniLM: a text's vector does not depend on the
other texts it is encoded with, in float32, bfloat16 or int8 (replays publish the same
bytes)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from loop.embeddings.backbone import minilm_path, offline, sentence_vectors
from loop.embeddings.precision import Precision, serving_copy

pytestmark = pytest.mark.slow

TEXTS = [
    "$AAPL beats estimates, shares up 4% after hours",
    "ok",
    "EURUSD slides as the ECB signals a pause; traders now price two cuts before the summer "
    "and the dollar firms against every major currency",
    "Bitcoin back above 40k",
    "",
    "Fed minutes: officials saw inflation risks tilted to the upside",
    "Zürich-based lender sees profit fall 😕",
]


@pytest.fixture(scope="module")
def encoder() -> Any:
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import SentenceTransformer

    offline()
    return SentenceTransformer(str(minilm_path()), device="cpu")


@pytest.mark.parametrize("precision", [Precision.FLOAT32, Precision.BFLOAT16, Precision.INT8])
def test_a_text_gets_the_same_vector_alone_and_in_any_batch(
    encoder: Any, precision: Precision
) -> None:
    served = serving_copy(encoder, precision)
    bfloat16 = precision is Precision.BFLOAT16
    together = sentence_vectors(served, TEXTS, batch_size=3, bfloat16=bfloat16)
    backwards = sentence_vectors(served, TEXTS[::-1], batch_size=64, bfloat16=bfloat16)[::-1]
    alone = np.stack([sentence_vectors(served, [t], bfloat16=bfloat16)[0] for t in TEXTS])
    assert together.dtype == np.float32 and together.shape == (len(TEXTS), 384)
    assert np.array_equal(together, alone)
    assert np.array_equal(backwards, alone)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("precision", [Precision.FLOAT32, Precision.INT8])
def test_a_text_gets_the_same_vector_on_one_thread_as_on_every_core(
    encoder: Any, precision: Precision
) -> None:
    """Scorers on one thread each (``ALLOOP_SCORER__THREADS=1``) and a scorer on every core
    share a group: a batch replayed by the other kind publishes the same bytes."""
    import torch

    from loop.embeddings.backbone import threads_in_use, use_threads

    served = serving_copy(encoder, precision)
    before = threads_in_use()
    use_threads(0)  # torch's default: left as it is
    assert threads_in_use() == before
    every_core = sentence_vectors(served, TEXTS, batch_size=64)
    try:
        use_threads(1)
        assert threads_in_use() == 1
        one_thread = sentence_vectors(served, TEXTS, batch_size=64)
    finally:
        torch.set_num_threads(before)
    assert np.array_equal(one_thread, every_core)


def test_the_traced_int8_pass_gives_the_untraced_vectors_in_any_batch(encoder: Any) -> None:
    import torch

    from loop.embeddings.backbone import transformer_of
    from loop.embeddings.traced import traced_forward

    served = serving_copy(encoder, Precision.INT8)
    forward = traced_forward(transformer_of(served))
    assert isinstance(forward, torch.jit.ScriptModule)  # MiniLM records
    untraced = sentence_vectors(served, TEXTS, batch_size=3)
    traced = sentence_vectors(served, TEXTS, batch_size=64, forward=forward)
    alone = np.stack([sentence_vectors(served, [t], forward=forward)[0] for t in TEXTS])
    assert np.array_equal(traced, untraced)
    assert np.array_equal(alone, untraced)


def test_the_vectors_are_sentence_transformers_own_and_the_fast_ones_stay_close(
    encoder: Any,
) -> None:
    reference = encoder.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    assert np.allclose(sentence_vectors(encoder, TEXTS), reference, atol=1e-5)
    fast = sentence_vectors(encoder, TEXTS, bfloat16=True)
    assert (fast * reference).sum(axis=1).min() > 0.999
    int8 = sentence_vectors(serving_copy(encoder, Precision.INT8), TEXTS)
    cosines = (int8 * reference).sum(axis=1)
    assert cosines.min() > 0.98
    assert cosines.max() < 0.99999  # it did compute in int8
    assert sentence_vectors(encoder, []).shape == (0, 384)
