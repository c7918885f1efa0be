"""Serving copies of a torch model that share what they do not convert with the original."""

from __future__ import annotations

from typing import Any


def copy_sharing(model: Any, changed: list[Any]) -> Any:
    """A deep copy of the torch ``model`` in which only the ``changed`` modules' own tensors
    are copied (to be converted in the copy); every other parameter and buffer is the
    original's tensor, shared, so a serving copy costs only what it converts."""
    import copy

    copied = {id(tensor) for module in changed for tensor in module.parameters()}
    shared = [t for t in [*model.parameters(), *model.buffers()] if id(t) not in copied]
    return copy.deepcopy(model, {id(t): t for t in shared})
