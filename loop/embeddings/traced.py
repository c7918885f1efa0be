"""An int8 encoder's forward pass recorded as one TorchScript graph.

The int8 encoders run about a dozen small torch operations per linear layer
(:mod:`loop.embeddings.int8`), some 700 per forward pass. Called from Python, each one takes
the interpreter lock back when it returns; the scorer runs its two encoders in two threads
(docs/benchmarks.md), so they queue for the lock between operations. Recorded once with
``torch.jit.trace``, the pass runs in torch's own interpreter without the lock: on a pass the
size of the scorer's (8 tweets of 32 tokens) with both threads busy, 11.7 ms instead of 15.9;
on one short text, 2.9 ms instead of 5.3 even alone.

The recorded graph computes exactly what the module computes (the same operations, in the
same order): checked against the module when it is made, on a shape other than the one it was
recorded on, and the module itself is kept whenever the two differ or tracing fails.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any

import torch

logger = logging.getLogger(__name__)

Forward = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(token ids, attention mask) -> the model's first output (hidden states or logits)."""


class FirstOutput(torch.nn.Module):
    """``model(input_ids, attention_mask)``'s first output, a plain tensor (what tracing can
    record: no dictionaries, no keyword arguments)."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        output = self.model(input_ids=input_ids, attention_mask=attention_mask, return_dict=False)
        first: torch.Tensor = output[0]
        return first


def first_output(model: Any) -> FirstOutput:
    """``model``'s forward pass as a :data:`Forward`, untraced."""
    return FirstOutput(model).eval()


def example(rows: int, width: int, vocabulary: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and a mask of ``rows`` texts padded to ``width``, the last one half padding
    (so that the recorded pass is the one that applies a padding mask, which every batch can
    take: a batch without padding gets a mask of ones)."""
    ids = (torch.arange(rows * width).reshape(rows, width) % max(1, vocabulary - 1)) + 1
    mask = torch.ones((rows, width), dtype=torch.int64)
    mask[-1, width // 2 :] = 0
    return ids, mask


def traced_forward(model: Any) -> Forward:
    """``model``'s forward pass (an encoder taking ``input_ids`` and ``attention_mask``) as one
    recorded graph, or the module's own call where recording fails or does not compute the
    same numbers."""
    module = first_output(model)
    vocabulary = int(getattr(getattr(model, "config", None), "vocab_size", 1000) or 1000)
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit's deprecation and tracer notes
            graph = torch.jit.trace(module, example(2, 16, vocabulary), check_trace=False)
            check = example(3, 24, vocabulary)
            same = torch.equal(graph(*check), module(*check))
    except Exception as exc:  # an architecture the tracer cannot record
        logger.warning("serving the int8 encoder untraced (tracing failed: %s)", exc)
        return module
    if not same:
        logger.warning("serving the int8 encoder untraced (the recorded pass differs)")
        return module
    return graph
