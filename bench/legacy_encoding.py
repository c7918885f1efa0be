"""The scorer's float32 path as it was before issue 16 (its baseline), for ``alloop bench
throughput --tasks``: the classifier embedding through sentence-transformers' ``encode``
(texts sorted by length, each batch padded to its longest text), then the tagger, in the same
thread, its windows sorted by subword count and each batch padded to its longest window.

Only the benchmark uses it: it puts the old path back onto loaded models, so that the speedup
is measured against it in the same run, on the same documents.
"""

from __future__ import annotations

import types
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from loop.embeddings.precision import Precision


def legacy_classifier(classifier: Any) -> None:
    """Make a loaded :class:`~loop.classification.setfit.SetFitClassifier` embed as before."""
    model = classifier._model

    def predict_with_embeddings(
        texts: Sequence[str], batch_size: int = 64
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        vectors = np.asarray(
            model.model_body.encode(
                list(texts),
                batch_size=batch_size,
                normalize_embeddings=model.normalize_embeddings,
                show_progress_bar=False,
                convert_to_numpy=True,
            ),
            dtype=np.float32,
        )
        return classifier.predict_from_embeddings(vectors), vectors

    classifier.precision = Precision.FLOAT32
    classifier.predict_with_embeddings = predict_with_embeddings


def legacy_tagger(tagger: Any) -> None:
    """Make a loaded :class:`~loop.entities.transformer_tagger.TransformerTagger` batch its
    windows as before, in float32."""
    import torch

    def window_probs(
        self: Any, windows: list[list[int]], batch_size: int
    ) -> list[npt.NDArray[np.float32]]:
        order = sorted(range(len(windows)), key=lambda row: len(windows[row]))
        probs: list[npt.NDArray[np.float32]] = [np.zeros((0, 0), np.float32)] * len(windows)
        pad = self._tokenizer.pad_token_id or 0
        for first in range(0, len(order), max(1, batch_size)):
            rows = order[first : first + max(1, batch_size)]
            width = max(len(windows[row]) for row in rows)
            ids = np.full((len(rows), width), pad, np.int64)
            mask = np.zeros((len(rows), width), np.int64)
            for line, row in enumerate(rows):
                ids[line, : len(windows[row])] = windows[row]
                mask[line, : len(windows[row])] = 1
            batch = self._forward(torch.from_numpy(ids), torch.from_numpy(mask))
            for line, row in enumerate(rows):
                probs[row] = batch[line, : len(windows[row])]
        return probs

    tagger.precision = Precision.FLOAT32
    tagger._window_probs = types.MethodType(window_probs, tagger)


def legacy_scorer(scorer: Any) -> None:
    """Make a :class:`workers.scorer.Scorer` score as before: both encoders in float32 with
    batches padded to their longest text, the entity tagger after the classifier."""
    served = scorer.watcher.served
    if served is not None:
        legacy_classifier(served.classifier)
    extractor = scorer.entities.served if scorer.entities is not None else None
    if extractor is not None:
        legacy_tagger(extractor.extractor)
    scorer._beside = None
