"""The frozen test set: the labels that came from a uniform sample of the stream.

The documents people label because the selection chose them (uncertain, rare, unseen,
drifted, cold-start picks) look like the selection, not like the stream: hard cases, rare
labels. A score read on them says little about how a version does on the documents it will
tag. So the test set is made of the other labels only:

- ``evaluation``: documents of the evaluation sample, a uniform draw from the stream made by
  the scorer apart from any selection strategy (:func:`in_evaluation_sample`, a stable hash of
  the document id below ``ALLOOP_SCORER__EVALUATION_FRACTION``);
- ``test-file``: labelled documents the model owner gave as an evaluation file
  (``alloop train --test FILE``), like a manual train/test split.

Every other label is trained on, all of them. The reason a document was chosen travels with
it to Argilla (record metadata ``reason``) and back into the label store (``origin``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, Protocol, TypeVar

from loop.ids import stable_fraction

EVALUATION: Final = "evaluation"
"""The reason (and label origin) of documents drawn for the evaluation sample."""
TEST_FILE: Final = "test-file"
"""The origin of labels from an evaluation file the model owner gave."""
TEST_ORIGINS = frozenset({EVALUATION, TEST_FILE})

SALT = "alloop-evaluation-sample"


class HasOrigin(Protocol):
    @property
    def origin(self) -> str | None: ...


T = TypeVar("T", bound=HasOrigin)


def in_evaluation_sample(doc_id: str, fraction: float) -> bool:
    """Whether the scorer draws the document for the evaluation sample: a stable hash of
    its id, so the draw is uniform over the stream, independent of every model and strategy,
    and the same on a replay."""
    if not 0 <= fraction <= 1:
        raise ValueError("the evaluation fraction must be between 0 and 1")
    return fraction > 0 and stable_fraction(doc_id, SALT) < fraction


def is_test(item: HasOrigin) -> bool:
    """Whether a label belongs to the frozen test set (see the module's description)."""
    return item.origin in TEST_ORIGINS


def split(items: Iterable[T]) -> tuple[list[T], list[T]]:
    """(train, test) by :func:`is_test`, each in the input order."""
    train: list[T] = []
    test: list[T] = []
    for item in items:
        (test if is_test(item) else train).append(item)
    return train, test
