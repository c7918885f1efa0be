"""The trainer's embedding cache: each text is encoded once per body, across rounds."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

from loop.embeddings.cache import KEEP_BODIES, EmbeddingCache


class Encoder:
    """Deterministic fake embeddings; remembers what it was asked to encode."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> npt.NDArray[np.float32]:
        self.calls.append(texts)
        return np.array([[len(t), ord(t[0])] for t in texts], dtype=np.float32)


def test_only_unseen_texts_are_encoded_and_each_once(tmp_path: Path) -> None:
    encoder = Encoder()
    cache = EmbeddingCache(tmp_path, "body-a")

    first = cache.embed(["up", "down", "up"], encoder)
    second = cache.embed(["down", "sideways", "up"], encoder)

    assert encoder.calls == [["up", "down"], ["sideways"]]
    assert first.tolist() == [[2, ord("u")], [4, ord("d")], [2, ord("u")]]
    assert second.tolist() == [[4, ord("d")], [8, ord("s")], [2, ord("u")]]
    assert (cache.hits, cache.misses) == (3, 3)


def test_a_later_round_reads_what_an_earlier_one_encoded(tmp_path: Path) -> None:
    EmbeddingCache(tmp_path, "body-a").embed(["up", "down"], Encoder())
    encoder = Encoder()

    again = EmbeddingCache(tmp_path, "body-a").embed(["down", "up"], encoder)
    other_body = EmbeddingCache(tmp_path, "body-b").embed(["down"], encoder)

    assert again.tolist() == [[4, ord("d")], [2, ord("u")]]
    assert encoder.calls == [["down"]]  # only for the other body
    assert other_body.shape == (1, 2)


def test_old_bodies_are_dropped_and_a_broken_file_is_ignored(tmp_path: Path) -> None:
    for i in range(KEEP_BODIES + 2):
        EmbeddingCache(tmp_path, f"body-{i}").embed(["text"], Encoder())
        os.utime(tmp_path / f"body-{i}.npz", (1_000_000 + i, 1_000_000 + i))
    kept = sorted(p.stem for p in tmp_path.glob("*.npz"))
    assert kept == [f"body-{i}" for i in range(2, KEEP_BODIES + 2)]

    (tmp_path / "body-x.npz").write_bytes(b"not a numpy file")
    encoder = Encoder()
    assert EmbeddingCache(tmp_path, "body-x").embed(["text"], encoder).shape == (1, 2)
    assert encoder.calls == [["text"]]
