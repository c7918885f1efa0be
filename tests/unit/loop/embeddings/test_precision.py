"""ALLOOP_PRECISION: what the serving encoders compute in, resolved per machine."""

from __future__ import annotations

import pytest

from loop.embeddings.precision import Precision, native_bfloat16, uses_bfloat16
from loop.settings import Settings


def test_auto_is_bfloat16_only_where_the_cpu_has_it_and_the_others_are_what_they_say() -> None:
    pytest.importorskip("torch")
    assert uses_bfloat16(Precision.AUTO) == native_bfloat16()
    assert uses_bfloat16(Precision.BFLOAT16) is True
    assert uses_bfloat16(Precision.FLOAT32) is False


def test_the_setting_reads_its_variable_and_refuses_an_unknown_precision(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().precision is Precision.AUTO
    monkeypatch.setenv("ALLOOP_PRECISION", "float32")
    assert Settings().precision is Precision.FLOAT32
    monkeypatch.setenv("ALLOOP_PRECISION", "int4")
    with pytest.raises(ValueError, match="precision"):
        Settings()


def test_bfloat16_linears_are_a_copy_that_computes_what_autocast_does() -> None:
    torch = pytest.importorskip("torch")
    from loop.embeddings.precision import with_bfloat16_linears

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(16, 32), torch.nn.LayerNorm(32), torch.nn.GELU(), torch.nn.Linear(32, 4)
    ).eval()
    fast = with_bfloat16_linears(model)
    assert {p.dtype for p in model.parameters()} == {torch.float32}  # the original is kept
    assert fast[0].weight.dtype == fast[3].weight.dtype == torch.bfloat16
    assert fast[1].weight.dtype == torch.float32  # autocast wants norms in float32
    assert fast[1].weight is model[1].weight  # and they are shared, not copied
    assert fast[0].weight is not model[0].weight
    inputs = torch.randn(5, 16)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(fast(inputs), model(inputs))
