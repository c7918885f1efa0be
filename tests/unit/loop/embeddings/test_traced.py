"""The int8 encoders' forward pass recorded as one graph: exactly the module's numbers, or
the module itself when the recording cannot be trusted."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from loop.embeddings.int8 import with_int8_linears  # noqa: E402
from loop.embeddings.traced import FirstOutput, traced_forward  # noqa: E402


class Toy(torch.nn.Module):  # type: ignore[misc]
    """An encoder's calling convention: ids and a mask in, a tuple of tensors out."""

    def __init__(self, branch_on_batch: bool = False) -> None:
        super().__init__()
        self.config = SimpleNamespace(vocab_size=50)
        self.embeddings = torch.nn.Embedding(50, 32)
        self.encoder = torch.nn.Sequential(
            torch.nn.Linear(32, 64), torch.nn.GELU(), torch.nn.Linear(64, 16)
        )
        self.branch_on_batch = branch_on_batch

    def forward(self, input_ids: Any, attention_mask: Any, return_dict: bool = True) -> Any:
        hidden = self.encoder(self.embeddings(input_ids)) * attention_mask[..., None]
        if self.branch_on_batch and input_ids.shape[0] > 2:  # what a recording freezes
            hidden = hidden * 2
        return (hidden,)


def batch(rows: int, width: int) -> tuple[Any, Any]:
    ids = torch.randint(1, 50, (rows, width))
    mask = torch.ones((rows, width), dtype=torch.int64)
    mask[0, width - 3 :] = 0
    return ids, mask


def test_the_recorded_int8_pass_computes_the_modules_numbers_at_any_shape() -> None:
    torch.manual_seed(0)
    model = with_int8_linears(Toy().eval())
    forward = traced_forward(model)
    assert isinstance(forward, torch.jit.ScriptModule)  # it did record
    with torch.inference_mode():
        for rows, width in ((1, 8), (5, 16), (64, 40)):
            ids, mask = batch(rows, width)
            assert torch.equal(forward(ids, mask), model(ids, mask)[0])
        ids, mask = batch(6, 24)  # and a row's numbers do not depend on its batch-mates
        together = forward(ids, mask)
        alone = torch.cat([forward(ids[i : i + 1], mask[i : i + 1]) for i in range(6)])
        assert torch.equal(together, alone)


def test_a_pass_the_recording_would_change_is_served_as_the_module(
    caplog: pytest.LogCaptureFixture,
) -> None:
    model = with_int8_linears(Toy(branch_on_batch=True).eval())
    with caplog.at_level(logging.WARNING, logger="loop.embeddings.traced"):
        forward = traced_forward(model)
    assert isinstance(forward, FirstOutput)
    assert "differs" in caplog.text
    ids, mask = batch(3, 8)
    with torch.inference_mode():
        assert torch.equal(forward(ids, mask), model(ids, mask)[0])


def test_a_pass_that_cannot_be_recorded_is_served_as_the_module(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Untraceable(Toy):
        def forward(self, input_ids: Any, attention_mask: Any, return_dict: bool = True) -> Any:
            return (super().forward(input_ids, attention_mask)[0].tolist(),)  # not a tensor

    with caplog.at_level(logging.WARNING, logger="loop.embeddings.traced"):
        forward = traced_forward(Untraceable().eval())
    assert isinstance(forward, FirstOutput)
    assert "tracing failed" in caplog.text
