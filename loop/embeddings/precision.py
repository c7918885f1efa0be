"""The arithmetic the encoders serve in: float32, bfloat16 or int8, chosen for the CPU.

Training is float32 always; this is about inference in the scorer and the API. int8
(:mod:`loop.embeddings.int8`, traced by :mod:`loop.embeddings.traced`) is the fastest where
the CPU has int8 dot-product instructions (VNNI): on this project's 2-core AMD EPYC, 1.4 times
bfloat16's documents per second with both tasks on, at the quality targets of issue 16, with
scores moved by a few hundredths against float32. bfloat16 (``torch.autocast``) roughly doubles
float32's speed on a CPU that multiplies bfloat16 matrices in hardware (AVX512-BF16 or AMX) and
is slower elsewhere, where it would be emulated; it moves scores by about 1e-3. With the
fixed-width batches of :mod:`loop.embeddings.batches` a document gets the same bytes in any
batch, in all three (docs/benchmarks.md).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Precision(StrEnum):
    """``ALLOOP_PRECISION``: what the serving encoders compute in."""

    AUTO = "auto"
    """int8 where the CPU has int8 dot products (VNNI), else bfloat16 where the CPU computes
    it in hardware, else float32."""
    FLOAT32 = "float32"
    BFLOAT16 = "bfloat16"
    """Even where it is emulated (slower): for comparisons."""
    INT8 = "int8"
    """The encoders' attention and feed-forward layers in int8 (:mod:`loop.embeddings.int8`),
    the rest in float32."""


def native_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware (AVX512-BF16 or AMX), where
    bfloat16 is faster than float32; elsewhere it would be emulated, and slower."""
    import torch

    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def native_int8() -> bool:
    """Whether this CPU has int8 dot-product instructions (VNNI), where torch multiplies int8
    matrices at about twice bfloat16's rate, and this torch can use them."""
    import torch

    from loop.embeddings.int8 import supported

    return bool(getattr(torch.cpu, "_is_vnni_supported", lambda: False)()) and supported()


def resolved(precision: Precision) -> Precision:
    """What ``precision`` computes in on this machine (never ``AUTO``)."""
    if precision is Precision.AUTO:
        if native_int8():
            return Precision.INT8
        return Precision.BFLOAT16 if native_bfloat16() else Precision.FLOAT32
    return precision


def serving_copy(model: Any, precision: Precision) -> Any:
    """The torch ``model`` to serve in ``precision``: itself in float32, else a copy whose
    linear layers hold bfloat16 or int8 weights (:func:`with_bfloat16_linears`,
    :func:`loop.embeddings.int8.with_int8_linears`). bfloat16 copies run under
    ``torch.autocast``, the others as they are."""
    kind = resolved(precision)
    if kind is Precision.BFLOAT16:
        return with_bfloat16_linears(model)
    if kind is Precision.INT8:
        from loop.embeddings.int8 import supported, with_int8_linears
        from loop.errors import ConfigError

        if not supported():
            raise ConfigError(
                "ALLOOP_PRECISION=int8: this torch cannot multiply int8 matrices on the CPU "
                "(torch._int_mm); use float32 or bfloat16"
            )
        return with_int8_linears(model)
    return model


def with_bfloat16_linears(model: Any) -> Any:
    """A copy of the torch ``model`` whose linear layers hold their weights in bfloat16, for
    inference under ``torch.autocast(dtype=bfloat16)``: the same numbers as autocast casting
    the float32 weights at every call (it rounds them the same way), without that cast (about
    a tenth of the encoders' time on short texts). The other layers stay float32, as autocast
    wants them, and share their tensors with the original (the embedding table is most of a
    MiniLM); the original is left as it is."""
    import torch

    from loop.embeddings.copies import copy_sharing

    fast = copy_sharing(model, [m for m in model.modules() if isinstance(m, torch.nn.Linear)])
    for module in fast.modules():
        if isinstance(module, torch.nn.Linear):
            module.to(torch.bfloat16)
    return fast
