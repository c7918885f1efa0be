"""The classifier contract: what the scorer, the trainer and the API rely on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt


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

    def predict_proba(self, texts: Sequence[str], batch_size: int = 64) -> npt.NDArray[np.float32]:
        """Return an array of shape ``(len(texts), len(labels))`` whose rows sum to 1."""
        ...

    def save(self, path: Path) -> None:
        """Write the model to a new folder ``path`` in the library's own format."""
        ...


class ClassifierFactory(Protocol):
    """Builds and trains a fresh classifier for each training run, and loads saved ones."""

    name: str

    def train(
        self, texts: Sequence[str], labels: Sequence[str], config: ClassifierConfig
    ) -> Classifier: ...

    def load(self, path: Path) -> Classifier: ...
