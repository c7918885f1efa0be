"""Linear layers in 8-bit integers, for the serving encoders (``ALLOOP_PRECISION=int8``, and
``auto`` on a CPU with int8 dot products, VNNI).

Each weight row (an output feature) is scaled to int8 once, when the serving copy is made.
At every call each input row (one token's hidden vector) is scaled to int8 by its own largest
magnitude, the two are multiplied in int32 (``torch._int_mm``, which uses the CPU's int8
dot-product instructions where it has them) and the product is scaled back to float32.

Integer products and sums are exact, and every scale belongs to one token, so a token's output
does not depend on the other tokens in the batch: with fixed-width batches a document gets the
same bytes in any batch, as in float32 and bfloat16. Dynamic quantization as torch and ONNX
Runtime ship it scales a whole batch by its largest value instead, which would tie a
document's scores to its batch-mates.
"""

from __future__ import annotations

from typing import Any

import torch

LEVELS = 127
"""Largest int8 magnitude used: symmetric scaling, -128 is never produced."""

SMALLEST_SCALE = 1e-12
"""Scale of an all-zero row (any positive value gives zeros)."""


def supported() -> bool:
    """Whether this torch multiplies int8 matrices on the CPU."""
    try:
        ones = torch.ones((1, 8), dtype=torch.int8)
        return int(torch._int_mm(ones, ones.t())[0, 0]) == 8
    except (AttributeError, RuntimeError):
        return False


def largest_magnitudes(rows: torch.Tensor) -> torch.Tensor:
    """Each row's largest absolute value, as a column: the same numbers as the infinity norm
    (``torch.linalg.vector_norm(ord=inf)``) at a twentieth of its cost on the CPU, where that
    norm takes a slow generic path (it cost as much as the int8 products themselves)."""
    return torch.maximum(rows.amax(dim=1, keepdim=True), rows.amin(dim=1, keepdim=True).neg())


class Int8Linear(torch.nn.Module):
    """A frozen ``torch.nn.Linear`` computing in int8, for inference."""

    weight_t: torch.Tensor
    """The int8 weights, (in, out): a transposed view of the (out, in) rows."""
    weight_scale: torch.Tensor
    """Each output feature's scale back to float32."""
    bias: torch.Tensor | None

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        scale = weight.abs().amax(dim=1).clamp(min=SMALLEST_SCALE) / LEVELS
        quantized = torch.round(weight / scale[:, None]).to(torch.int8)
        # The transposed view of the rows is the layout _int_mm multiplies fastest.
        self.register_buffer("weight_t", quantized.t())
        self.register_buffer("weight_scale", scale)
        bias = linear.bias.detach().float() if linear.bias is not None else None
        self.register_buffer("bias", bias)
        self.in_features = linear.in_features
        self.out_features = linear.out_features

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        rows = inputs.reshape(-1, self.in_features).float()
        scale = largest_magnitudes(rows).clamp_(min=SMALLEST_SCALE).div_(LEVELS)
        quantized = torch.div(rows, scale).round_().to(torch.int8)
        out = torch._int_mm(quantized, self.weight_t).to(torch.float32)
        out.mul_(scale).mul_(self.weight_scale)
        if self.bias is not None:
            out.add_(self.bias)
        return out.reshape(*inputs.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


def with_int8_linears(model: Any, within: str = "encoder") -> Any:
    """A copy of the torch ``model`` whose linear layers inside the transformer's ``within``
    stack (attention and feed-forward) compute in int8 (:class:`Int8Linear`). Heads, poolers
    and the embeddings stay float32 and share their tensors with the original, which is left
    as it is."""
    from loop.embeddings.copies import copy_sharing

    chosen = {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and within in name.split(".")
    }
    fast = copy_sharing(model, list(chosen.values()))
    for name in chosen:
        parent_name, _, child = name.rpartition(".")
        parent = fast.get_submodule(parent_name) if parent_name else fast
        setattr(parent, child, Int8Linear(getattr(parent, child)))
    return fast
