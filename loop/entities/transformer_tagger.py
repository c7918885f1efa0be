"""A BIO token classifier on the packaged all-MiniLM-L6-v2, through ``transformers``.

The encoder is fine-tuned with a linear tag head (``AutoModelForTokenClassification``).
Character offsets come from the fast tokenizer's offset mapping, which points into the
original text through lower-casing and accent stripping, so spans are exact on Unicode
text. Texts longer than ``max_length`` subwords are tagged in overlapping windows.
Saved with ``save_pretrained`` (safetensors) plus ``alloop_extractor.json``; never pickled.
Tagging runs in bfloat16 where the CPU computes it in hardware (``ExtractorConfig.bfloat16``),
else in float32; a server can choose another precision (``serve_in``, ``ALLOOP_PRECISION``,
:mod:`loop.embeddings.precision`). With ``ExtractorConfig.quantize`` it tags with an int8 copy
of the linear layers (dynamic quantization): faster on a CPU, at a cost in recall measured in
docs/entities.md, and whatever the precision. Training is float32 either way.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from loop.embeddings.backbone import minilm_path, offline
from loop.embeddings.batches import fixed_width_batches, padded
from loop.embeddings.precision import Precision, native_bfloat16, resolved, serving_copy
from loop.embeddings.traced import Forward, first_output, traced_forward
from loop.entities.base import (
    EntityExtractor,
    Example,
    ExtractorConfig,
    OnePassExtractor,
    Span,
    check_examples,
    ensure_empty_folder,
    entity_types,
)
from loop.entities.decoding import TokenScores, bio_tags, decode, merge_windows
from loop.errors import ModelError

logger = logging.getLogger(__name__)

META_FILE = "alloop_extractor.json"
STRIDE = 32
"""Subword tokens shared by consecutive windows of a long text."""


class TransformerTagger(OnePassExtractor):
    """A fine-tuned token classifier behind the :class:`EntityExtractor` contract."""

    def __init__(
        self, model: Any, tokenizer: Any, types: list[str], config: ExtractorConfig
    ) -> None:
        self._model = model.eval()
        self._infer = (
            torch.ao.quantization.quantize_dynamic(self._model, {torch.nn.Linear}, torch.qint8)
            if config.quantize
            else self._model
        )
        self._tokenizer = tokenizer
        self._types = types
        self.config = config
        fast = config.bfloat16 and not config.quantize and native_bfloat16()
        self.precision = Precision.BFLOAT16 if fast else Precision.FLOAT32
        """What the encoder tags in here (``ExtractorConfig.bfloat16``, ``serve_in``)."""
        self._serving: Forward | None = None
        """The forward pass tagging is done with, made at the first batch: the model in
        float32, a copy with bfloat16 or int8 linear layers otherwise (the int8 one traced,
        :mod:`loop.embeddings.traced`)."""

    @property
    def types(self) -> list[str]:
        return list(self._types)

    def serve_in(self, precision: Precision) -> None:
        """Tag in ``precision`` from now on (a dynamically quantized copy,
        ``config.quantize``, stays as it is)."""
        if not self.config.quantize and resolved(precision) is not self.precision:
            self.precision = resolved(precision)
            self._serving = None

    def encode_windows(self, texts: str | list[str], **options: Any) -> Any:
        """The tokenizer's encoding of ``texts`` cut into windows of at most ``max_length``
        subwords that overlap by ``STRIDE``, with each token's character offsets and the text
        each window came from; ``options`` go to the tokenizer too (padding, tensors)."""
        return self._tokenizer(
            texts,
            truncation=True,
            max_length=self.config.max_length,
            stride=STRIDE,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            **options,
        )

    def token_scores(self, texts: Sequence[str], batch_size: int = 32) -> list[TokenScores]:
        """Per-token offsets and tag probabilities of each text (windows merged), in input
        order. The texts are tokenized at once and their windows batched by padded width
        (:mod:`loop.embeddings.batches`): little padding, and a text's probabilities do not
        depend on the other texts."""
        if not texts:
            return []
        encoded = self.encode_windows(list(texts))
        windows: list[list[int]] = encoded["input_ids"]
        probs = self._window_probs(windows, batch_size)
        return merge_windows(
            len(texts), encoded["overflow_to_sample_mapping"], encoded["offset_mapping"], probs
        )

    def _window_probs(
        self, windows: list[list[int]], batch_size: int
    ) -> list[npt.NDArray[np.float32]]:
        """Tag probabilities of every token of every window, in fixed-width batches (a
        window's probabilities do not depend on its batch-mates: loop/embeddings/batches.py)."""
        probs: list[npt.NDArray[np.float32]] = [np.zeros((0, 0), np.float32)] * len(windows)
        pad = self._tokenizer.pad_token_id or 0
        for width, rows in fixed_width_batches([len(w) for w in windows], batch_size):
            ids, mask = padded(windows, rows, width, pad)
            batch = self._forward(torch.from_numpy(ids), torch.from_numpy(mask))
            for line, row in enumerate(rows):
                probs[row] = batch[line, : len(windows[row])]
        return probs

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor) -> npt.NDArray[np.float32]:
        """Softmax over the tags of one padded batch: (windows, tokens, tags)."""
        with (
            torch.inference_mode(),
            torch.autocast(
                "cpu", dtype=torch.bfloat16, enabled=self.precision is Precision.BFLOAT16
            ),
        ):
            logits = self._serving_forward()(ids, mask)
        probs: npt.NDArray[np.float32] = torch.softmax(logits.float(), dim=-1).numpy()
        return probs

    def _serving_forward(self) -> Forward:
        if self._serving is None:
            if self.precision is Precision.FLOAT32:
                self._serving = first_output(self._infer)
            elif self.precision is Precision.INT8:
                self._serving = traced_forward(serving_copy(self._model, self.precision))
            else:
                self._serving = first_output(serving_copy(self._model, self.precision))
        return self._serving

    def analyse(
        self, texts: Sequence[str], batch_size: int = 32
    ) -> list[tuple[list[Span], list[Span]]]:
        """Predicted spans and near misses of each text, in one pass of the model."""
        return [
            decode(
                text,
                tokens,
                self._types,
                self.config.threshold,
                self.config.near_miss_floor,
            )
            for text, tokens in zip(texts, self.token_scores(texts, batch_size), strict=True)
        ]

    def save(self, path: Path) -> None:
        ensure_empty_folder(path)
        self._model.save_pretrained(str(path))
        self._tokenizer.save_pretrained(str(path))
        meta: dict[str, Any] = {"kind": TransformerTaggerFactory.name, "types": self._types}
        meta["config"] = self.config.to_dict()
        (path / META_FILE).write_text(json.dumps(meta, indent=2))


def token_targets(
    offsets: Sequence[tuple[int, int]], spans: Sequence[Span], tag_index: dict[str, int]
) -> list[int]:
    """BIO tag ids of the subword tokens with ``offsets``; -100 (ignored) for special tokens.

    A token overlapping a span is inside it; the first such token gets ``B-``.
    """
    targets: list[int] = []
    ordered = sorted(spans)
    opened: set[int] = set()
    for start, end in offsets:
        if start >= end:
            targets.append(-100)
            continue
        tag = tag_index["O"]
        for number, span in enumerate(ordered):
            if start < span.end and end > span.start:
                prefix = "I" if number in opened else "B"
                opened.add(number)
                tag = tag_index[f"{prefix}-{span.label}"]
                break
        targets.append(tag)
    return targets


class TransformerTaggerFactory:
    """Trains :class:`TransformerTagger` models on the packaged MiniLM, offline, on CPU."""

    name = "minilm-tagger"

    def __init__(self, encoder: Path | None = None) -> None:
        self._encoder = encoder

    def train(self, examples: Sequence[Example], config: ExtractorConfig) -> EntityExtractor:
        types = entity_types(examples, config)
        check_examples(examples, types)
        if not examples:
            raise ModelError("no training examples")
        offline()
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        tags = bio_tags(types)
        tag_index = {tag: i for i, tag in enumerate(tags)}
        encoder = str(self._encoder or minilm_path())
        torch.manual_seed(config.seed)
        tokenizer = AutoTokenizer.from_pretrained(encoder, local_files_only=True)
        model = AutoModelForTokenClassification.from_pretrained(
            encoder,
            num_labels=len(tags),
            id2label=dict(enumerate(tags)),
            label2id=tag_index,
            local_files_only=True,
        )
        encoded = tokenizer(
            [example.text for example in examples],
            truncation=True,
            max_length=config.max_length,
            return_offsets_mapping=True,
        )
        rows = [
            (ids, token_targets(offsets, example.spans, tag_index))
            for ids, offsets, example in zip(
                encoded["input_ids"], encoded["offset_mapping"], examples, strict=True
            )
        ]
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
        batches = (len(rows) + config.batch_size - 1) // config.batch_size
        epochs = max(config.epochs, -(-config.min_steps // batches))
        steps = epochs * batches
        budget = config.time_budget_s
        began = time.monotonic()

        def remaining(step: int) -> float:
            """Learning-rate factor: linear decay to 0 by the last step or the time budget,
            whichever comes first, so a run cut short by the budget still ends cooled down."""
            done = step / max(1, steps)
            if budget is not None:
                done = max(done, (time.monotonic() - began) / budget)
            return max(0.0, 1.0 - done)

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, remaining)
        order = random.Random(config.seed)
        model.train()
        out_of_time = False
        for epoch in range(epochs):
            order.shuffle(rows)
            total = 0.0
            for first in range(0, len(rows), config.batch_size):
                if budget is not None and time.monotonic() - began >= budget:
                    out_of_time = True
                    break
                loss = _step(model, rows[first : first + config.batch_size], tokenizer)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
                total += loss.item()
            elapsed = time.monotonic() - began
            logger.info("epoch %d: loss %.3f, %.0f s", epoch + 1, total, elapsed)
            if out_of_time:
                logger.info("time budget reached after %.0f s, in epoch %d", elapsed, epoch + 1)
                break
        return TransformerTagger(model, tokenizer, types, config)

    def load(self, path: Path) -> TransformerTagger:
        offline()
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        meta_file = path / META_FILE
        if not meta_file.is_file():
            raise ModelError(f"{path} holds no MiniLM tagger ({META_FILE} missing)")
        try:
            meta = json.loads(meta_file.read_text())
            model = AutoModelForTokenClassification.from_pretrained(
                str(path), local_files_only=True
            )
            tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        except Exception as exc:
            raise ModelError(f"cannot load the MiniLM tagger in {path}: {exc}") from exc
        return TransformerTagger(
            model, tokenizer, list(meta["types"]), ExtractorConfig.from_dict(meta["config"])
        )


def _step(model: Any, batch: list[tuple[list[int], list[int]]], tokenizer: Any) -> Any:
    """The loss of one padded batch."""
    width = max(len(ids) for ids, _ in batch)
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in batch])
    labels = torch.tensor([tags + [-100] * (width - len(tags)) for _, tags in batch])
    mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in batch])
    return model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
