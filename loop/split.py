"""The frozen train/test split: a stable hash of the document id decides, once and for all.

A document is in the test set when its hash falls below ``test_fraction``. Nothing else
matters (not the order labels arrive in, not the other documents), so the test set only grows
as labels arrive, every version is scored on the documents it never trained on, and deltas
between versions compare like with like.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar

from loop.ids import stable_fraction

SALT = "alloop-test-split"


class HasId(Protocol):
    @property
    def id(self) -> str: ...


T = TypeVar("T", bound=HasId)


def in_test(doc_id: str, test_fraction: float = 0.2) -> bool:
    """Whether the document belongs to the frozen test set."""
    if not 0 < test_fraction < 1:
        raise ValueError("test_fraction must be between 0 and 1")
    return stable_fraction(doc_id, SALT) < test_fraction


def split(items: Iterable[T], test_fraction: float = 0.2) -> tuple[list[T], list[T]]:
    """(train, test) by :func:`in_test`, each in the input order."""
    train: list[T] = []
    test: list[T] = []
    for item in items:
        (test if in_test(item.id, test_fraction) else train).append(item)
    return train, test
