"""The classifier contract: what the scorer, the trainer and the API rely on.

A classifier is single-label (each text gets one of the labels; a row of probabilities sums to
1) or multi-label (each label is a yes/no question of its own; a row holds one independent
probability per label, and every label at or above :data:`MULTI_LABEL_THRESHOLD` applies).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from loop.errors import ModelError

MULTI_LABEL_THRESHOLD = 0.5
"""A multi-label classifier says that a label applies when its probability reaches this."""

Target = str | tuple[str, ...]
"""What a training example is labelled with: one label, or the set of labels that apply (a
tuple, possibly empty) for a multi-label classifier."""


@dataclass(frozen=True)
class ClassifierConfig:
    """Hyperparameters of a SetFit classifier, stored beside every version trained with them.

    The defaults fit a 2-core CPU: a few contrastive pairs per example, one epoch.
    """

    num_iterations: int = 10
    """Contrastive pairs generated per example and epoch (SetFit's ``num_iterations``)."""
    num_epochs: int = 1
    """Epochs of contrastive fine-tuning of the body."""
    batch_size: int = 16
    """Pairs per step while fine-tuning the body."""
    body_learning_rate: float = 2e-5
    """Learning rate of the sentence-transformer body."""
    head_learning_rate: float = 1e-2
    """Learning rate of the head (used only by differentiable heads)."""
    max_length: int = 128
    """Tokens kept per text; longer texts are truncated."""
    head_c: float = 4.0
    """Inverse regularisation strength of the logistic-regression head. scikit-learn's
    default (1.0, SetFit's) underfits the unit-length MiniLM embeddings: see the learning
    curves in docs/benchmarks.md."""
    freeze_body: bool = False
    """Skip body fine-tuning and fit the logistic-regression head only (fast rounds)."""
    body: str | None = None
    """A saved model folder whose body to start from (a head-only round takes the body of
    the last full fine-tune); ``None``: the packaged all-MiniLM-L6-v2."""
    seed: int = 42
    """Seed for pair sampling and the head."""
    multi_label: bool = False
    """Train a multi-label classifier (one-vs-rest: a yes/no head per label) on label sets."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClassifierConfig:
        known = {field for field in cls.__dataclass_fields__}
        return cls(**{key: value for key, value in data.items() if key in known})


@runtime_checkable
class Classifier(Protocol):
    """A trained text classifier."""

    @property
    def labels(self) -> list[str]:
        """Label names, in the order of the columns of :meth:`predict_proba`."""
        ...

    @property
    def multi_label(self) -> bool:
        """Whether the labels are independent (several, or none, may apply to one text)."""
        ...

    def predict_proba(self, texts: Sequence[str], batch_size: int = 64) -> npt.NDArray[np.float32]:
        """Return an array of shape ``(len(texts), len(labels))``; its rows sum to 1 unless the
        classifier is :attr:`multi_label`."""
        ...

    def save(self, path: Path) -> None:
        """Write the model to a new folder ``path`` in the library's own format."""
        ...


class ClassifierFactory(Protocol):
    """Builds and trains a fresh classifier for each training run, and loads saved ones."""

    name: str

    def train(
        self, texts: Sequence[str], labels: Sequence[Target], config: ClassifierConfig
    ) -> Classifier:
        """Train on ``texts``: one label each, or with ``config.multi_label`` one label set
        (a tuple) each."""
        ...

    def load(self, path: Path) -> Classifier: ...


def applying(labels: Sequence[str], row: Sequence[float] | npt.NDArray[np.float32]) -> list[str]:
    """The labels a multi-label prediction says apply, the likeliest first."""
    chosen = [(float(p), label) for label, p in zip(labels, row, strict=True)]
    return [label for p, label in sorted(chosen, reverse=True) if p >= MULTI_LABEL_THRESHOLD]


def count_labels(targets: Sequence[Target]) -> Counter[str]:
    """Examples per label; an example with a label set counts for each of its labels."""
    counts: Counter[str] = Counter()
    for target in targets:
        counts.update([target] if isinstance(target, str) else target)
    return counts


def training_sets(
    labels: Sequence[Target], multi_label: bool
) -> tuple[list[tuple[str, ...]], list[str]]:
    """A factory's training targets as label sets, with the sorted label names. Raises
    :class:`ModelError` when a target does not fit the mode (a string for a multi-label
    classifier, a set for a single-label one) or fewer than two labels occur."""
    sets: list[tuple[str, ...]] = []
    for number, target in enumerate(labels):
        if isinstance(target, str) == multi_label:
            wanted = "a set of labels" if multi_label else "one label"
            raise ModelError(f"example {number}: expected {wanted}, got {target!r}")
        sets.append(tuple(sorted(set(target))) if multi_label else (str(target),))
    names = sorted(count_labels(sets))
    if len(names) < 2:
        raise ModelError(f"need at least two labels to train, got {names}")
    return sets, names


def multi_hot(sets: Sequence[Sequence[str]], names: Sequence[str]) -> npt.NDArray[np.int64]:
    """A (documents x labels) 0/1 matrix of label sets; labels outside ``names`` are ignored."""
    index = {name: i for i, name in enumerate(names)}
    matrix = np.zeros((len(sets), len(names)), dtype=np.int64)
    for row, labels in enumerate(sets):
        for label in labels:
            if label in index:
                matrix[row, index[label]] = 1
    return matrix
