"""ALLOOP_PRECISION: what the serving encoders compute in, resolved per machine."""

from __future__ import annotations

import pytest

from loop.embeddings.precision import Precision, native_bfloat16, resolved
from loop.settings import Settings


def test_auto_is_int8_with_vnni_else_bfloat16_where_the_cpu_has_it_else_float32(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("torch")
    from loop.embeddings import precision

    for int8, bfloat16, expected in (
        (True, True, Precision.INT8),
        (True, False, Precision.INT8),
        (False, True, Precision.BFLOAT16),
        (False, False, Precision.FLOAT32),
    ):
        monkeypatch.setattr(precision, "native_int8", lambda int8=int8: int8)
        monkeypatch.setattr(precision, "native_bfloat16", lambda bfloat16=bfloat16: bfloat16)
        assert resolved(Precision.AUTO) is expected
    monkeypatch.undo()
    native = Precision.BFLOAT16 if native_bfloat16() else Precision.FLOAT32
    assert resolved(Precision.AUTO) is (Precision.INT8 if precision.native_int8() else native)
    assert resolved(Precision.BFLOAT16) is Precision.BFLOAT16
    assert resolved(Precision.FLOAT32) is Precision.FLOAT32
    assert resolved(Precision.INT8) is Precision.INT8


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


def test_int8_linears_are_a_copy_close_to_float32_and_a_row_is_the_same_in_any_batch() -> None:
    torch = pytest.importorskip("torch")
    from loop.embeddings.int8 import Int8Linear, with_int8_linears

    torch.manual_seed(0)
    encoder = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.GELU())
    model = torch.nn.ModuleDict({"encoder": encoder, "head": torch.nn.Linear(256, 3)}).eval()
    fast = with_int8_linears(model)
    assert isinstance(fast["encoder"][0], Int8Linear)
    assert fast["encoder"][0].weight_t.dtype == torch.int8
    assert isinstance(fast["head"], torch.nn.Linear)  # outside the encoder: float32
    assert fast["head"].weight is model["head"].weight  # and shared, not copied
    assert isinstance(model["encoder"][0], torch.nn.Linear)  # the original is kept
    inputs = torch.randn(3, 7, 64) * torch.linspace(0.01, 10, 7)[None, :, None]
    inputs[1, 2] = 0  # an all-zero token
    with torch.inference_mode():
        exact, together = model["encoder"](inputs), fast["encoder"](inputs)
        assert together.shape == exact.shape and together.dtype == torch.float32
        assert not torch.equal(together, exact)  # it did compute in int8
        error = (together - exact).norm(dim=-1) / exact.norm(dim=-1).clamp(min=1e-6)
        assert float(error.max()) < 0.03
        for sample in range(3):
            for token in range(7):
                alone = fast["encoder"](inputs[sample, token : token + 1])
                assert torch.equal(alone[0], together[sample, token])


def test_int8_serving_refuses_a_torch_that_cannot_multiply_int8(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    torch = pytest.importorskip("torch")
    from loop.embeddings import int8
    from loop.embeddings.precision import serving_copy
    from loop.errors import ConfigError

    assert int8.supported()
    monkeypatch.delattr(torch, "_int_mm")
    assert not int8.supported()
    with pytest.raises(ConfigError, match="ALLOOP_PRECISION=int8"):
        serving_copy(torch.nn.Linear(8, 8), Precision.INT8)
