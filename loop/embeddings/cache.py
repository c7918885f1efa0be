"""Sentence embeddings kept between training rounds.

A head-only round refits the head on the frozen body, so every labelled text it saw before
has the same embedding as last time; so do the test texts both the new and the promoted
version are scored on. The trainer keeps them on disk, one file per body (identified by its
weights, so that two versions that share a body share a file), and each round encodes only
the texts it has not seen. The round's cost then follows the new labels, not all labels.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

KEEP_BODIES = 3
"""Files kept in the cache folder; older bodies (replaced by full fine-tunes) are dropped."""


def body_fingerprint(body: Any) -> str:
    """A digest of a torch module's weights and its ``max_seq_length`` (truncation changes
    embeddings too)."""
    digest = hashlib.blake2b(digest_size=12)
    digest.update(str(getattr(body, "max_seq_length", "")).encode())
    for name, tensor in body.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def text_key(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=12).hexdigest()


class EmbeddingCache:
    """Embeddings by text for one body, in ``<root>/<fingerprint>.npz``."""

    def __init__(self, root: Path, fingerprint: str) -> None:
        self.root = root
        self.path = root / f"{fingerprint}.npz"
        self.vectors: dict[str, npt.NDArray[np.float32]] = {}
        self.hits = 0
        self.misses = 0
        if self.path.is_file():
            try:
                with np.load(self.path) as data:
                    self.vectors = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))
            except (OSError, ValueError, KeyError) as exc:
                logger.warning("ignoring the unreadable embedding cache %s: %s", self.path, exc)

    def embed(
        self,
        texts: Sequence[str],
        encode: Callable[[list[str]], npt.NDArray[np.float32]],
    ) -> npt.NDArray[np.float32]:
        """The embeddings of ``texts``; ``encode`` runs on the ones not cached, once each."""
        keys = [text_key(t) for t in texts]
        missing: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in self.vectors:
                missing.setdefault(key, text)
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            fresh = encode(list(missing.values()))
            self.vectors.update(zip(missing, fresh, strict=True))
            self._save()
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self.vectors[k] for k in keys]).astype(np.float32)

    def _save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        keys = list(self.vectors)
        handle, name = tempfile.mkstemp(dir=self.root, prefix=".tmp-", suffix=".npz")
        try:
            with os.fdopen(handle, "wb") as out:
                np.savez(
                    out, keys=np.array(keys), vectors=np.stack([self.vectors[k] for k in keys])
                )
            os.replace(name, self.path)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        others = sorted(
            (p for p in self.root.glob("*.npz") if p != self.path),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for old in others[KEEP_BODIES - 1 :]:
            old.unlink(missing_ok=True)
