"""A SetFit classifier on the packaged all-MiniLM-L6-v2, saved in SetFit's own format.

A multi-label classifier is SetFit's one-vs-rest strategy: contrastive pairs are positive when
two texts share a label, and the head is one logistic regression per label.

SetFit stores its scikit-learn head with joblib (a pickle). Only load versions from a registry
you control; alloop never loads a model from a path a request names.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from loop import logs
from loop.classification.base import Classifier, ClassifierConfig, Target, multi_hot, training_sets
from loop.embeddings.backbone import minilm_path, offline, sentence_vectors, transformer_of
from loop.embeddings.cache import EmbeddingCache, body_fingerprint
from loop.embeddings.precision import Precision, resolved, serving_copy
from loop.errors import ModelError

if TYPE_CHECKING:
    from loop.embeddings.traced import Forward

logger = logging.getLogger(__name__)

ENCODE_BATCH = 64
"""Texts per forward pass when embedding for the head (inference only, so larger than the
fine-tuning batch)."""


class SetFitClassifier:
    """A trained SetFit model behind the :class:`~loop.classification.base.Classifier` contract."""

    def __init__(
        self,
        model: Any,
        cache: EmbeddingCache | None = None,
        precision: Precision = Precision.FLOAT32,
    ) -> None:
        """``precision``: what the body embeds in when serving (see
        :mod:`loop.embeddings.precision`). A classifier with an embedding ``cache`` (the
        trainer's) embeds in float32, so that the cache holds the training embeddings."""
        self._model = model
        self._cache = cache
        self.precision = Precision.FLOAT32 if cache is not None else resolved(precision)
        self._serving_body: Any = None
        """The body with bfloat16 or int8 linear layers, made at the first batch."""
        self._serving_forward: Forward | None = None
        """The int8 body's transformer traced (:mod:`loop.embeddings.traced`)."""
        labels = list(model.labels or [])
        if not labels:
            raise ModelError("the SetFit model has no label names")
        self._labels = labels

    @property
    def labels(self) -> list[str]:
        return list(self._labels)

    @property
    def multi_label(self) -> bool:
        # SetFit does not save its multi_target_strategy; the fitted head tells.
        head_multi = bool(getattr(self._model.model_head, "multilabel_", False))
        return self._model.multi_target_strategy is not None or head_multi

    def predict_proba(self, texts: Sequence[str], batch_size: int = 64) -> npt.NDArray[np.float32]:
        if not texts:
            return np.zeros((0, len(self._labels)), dtype=np.float32)
        return self.predict_with_embeddings(texts, batch_size)[0]

    def predict_with_embeddings(
        self, texts: Sequence[str], batch_size: int = 64
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Probabilities and the body's embeddings in one pass (the scorer's selection needs
        both; computing the embeddings twice would halve its throughput)."""
        if not texts:
            empty = np.zeros((0, len(self._labels)), dtype=np.float32)
            return empty, np.zeros((0, 0), dtype=np.float32)
        if self._cache is not None:
            vectors = self._cache.embed(texts, lambda todo: encode(self._model, todo, batch_size))
        else:
            vectors = self.embed(texts, batch_size, self._model.normalize_embeddings)
        return self.predict_from_embeddings(vectors), vectors

    def predict_from_embeddings(self, vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Probabilities from embeddings the same body made (the head only), a row at a time:
        a matrix product over many rows sums in another order than over one (about 1e-7), and
        a document's probabilities must not depend on its batch-mates (a replay re-publishes
        the same bytes). The head costs microseconds a row, the body milliseconds."""
        if len(vectors) == 0:
            return np.zeros((0, len(self._labels)), dtype=np.float32)
        head = self._model.model_head
        rows = [head.predict_proba(vectors[row : row + 1]) for row in range(len(vectors))]
        return np.asarray(np.concatenate(rows), dtype=np.float32)

    def embed(
        self, texts: Sequence[str], batch_size: int = 64, normalize: bool = True
    ) -> npt.NDArray[np.float32]:
        """Sentence embeddings from the (fine-tuned) body, L2-normalised unless ``normalize``
        is false."""
        if self.precision is Precision.FLOAT32:
            return sentence_vectors(self._model.model_body, texts, batch_size, normalize)
        if self._serving_body is None:
            self._serving_body = serving_copy(self._model.model_body, self.precision)
            if self.precision is Precision.INT8:
                from loop.embeddings.traced import traced_forward

                self._serving_forward = traced_forward(transformer_of(self._serving_body))
        bfloat16 = self.precision is Precision.BFLOAT16
        return sentence_vectors(
            self._serving_body, texts, batch_size, normalize, bfloat16, self._serving_forward
        )

    def save(self, path: Path) -> None:
        if path.exists() and any(path.iterdir()):
            raise ModelError(f"{path} exists and is not empty; model folders are written once")
        self._model.save_pretrained(str(path))


def encode(model: Any, texts: Sequence[str], batch_size: int = 64) -> npt.NDArray[np.float32]:
    """The body's sentence embeddings in float32, as SetFit feeds them to its head."""
    return sentence_vectors(model.model_body, texts, batch_size, model.normalize_embeddings)


MULTI_TARGET_STRATEGY = "one-vs-rest"


def logistic_head(config: ClassifierConfig) -> Any:
    """SetFit's logistic-regression head with alloop's regularisation (see
    :attr:`ClassifierConfig.head_c`); one per label for a multi-label classifier, each
    weighted so that a label's few positives count as much as its many negatives (without
    it, rare labels seldom reach 0.5: macro-F1 0.689 against 0.817 on NLU++, docs/benchmarks.md).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    if not config.multi_label:
        return LogisticRegression(C=config.head_c, max_iter=1000, random_state=config.seed)
    head = LogisticRegression(
        C=config.head_c, max_iter=1000, random_state=config.seed, class_weight="balanced"
    )
    return OneVsRestClassifier(head)


def fit_head(model: Any, embeddings: npt.NDArray[np.float32], targets: Any) -> None:
    """Refit the model's logistic-regression head on fixed embeddings (the body stays frozen).

    This is SetFit's own head training without its body pass, so a caller that already holds
    the embeddings (the learning-curve benchmark, which embeds the pool once) trains exactly
    the model a head-only training round makes. ``targets``: label indices, or a multi-hot
    matrix for a multi-label model.
    """
    import warnings

    from sklearn.base import clone

    head = clone(model.model_head)
    with warnings.catch_warnings():
        # One-vs-rest on a label that every (or no) training text has: sklearn predicts the
        # constant, which is the right answer until a counter-example is labelled.
        warnings.filterwarnings("ignore", message="Label not .* present in all training")
        head.fit(embeddings, np.asarray(targets))
    model.model_head = head


class SetFitFactory:
    """Trains fresh SetFit classifiers and loads saved ones, always offline."""

    name = "setfit"

    def __init__(
        self,
        body: Path | None = None,
        cache_dir: Path | None = None,
        precision: Precision = Precision.FLOAT32,
    ) -> None:
        """``cache_dir``: keep embeddings there between rounds (the trainer's rounds); the
        classifiers this factory trains or loads then read and add to it. ``precision``:
        what the classifiers it loads embed in (the scorer and the API serve in
        ``ALLOOP_PRECISION``; training and the trainer's evaluations are float32)."""
        self._body = body
        self._cache_dir = cache_dir
        self._precision = precision

    def _cache(self, model: Any) -> EmbeddingCache | None:
        if self._cache_dir is None:
            return None
        return EmbeddingCache(self._cache_dir, body_fingerprint(model.model_body))

    def train(
        self, texts: Sequence[str], labels: Sequence[Target], config: ClassifierConfig
    ) -> Classifier:
        if len(texts) != len(labels):
            raise ModelError(f"{len(texts)} texts but {len(labels)} labels")
        sets, names = training_sets(labels, config.multi_label)
        offline()
        from datasets import Dataset
        from setfit import SetFitModel, Trainer, TrainingArguments
        from transformers.trainer_callback import PrinterCallback, ProgressCallback

        logs.quiet_libraries()  # SetFit sets up its own terminal logging when imported

        targets: Any
        if config.multi_label:
            targets = multi_hot(sets, names).tolist()
        else:
            index = {name: i for i, name in enumerate(names)}
            targets = [index[labels_of[0]] for labels_of in sets]
        body = config.body or str(self._body or minilm_path())
        model = SetFitModel.from_pretrained(
            body,
            labels=names,
            multi_target_strategy=MULTI_TARGET_STRATEGY if config.multi_label else None,
        )
        model.model_body.max_seq_length = config.max_length
        model.model_head = logistic_head(config)  # never a saved body's old head
        with tempfile.TemporaryDirectory(prefix="alloop-setfit-") as scratch:
            args = TrainingArguments(
                output_dir=scratch,
                batch_size=config.batch_size,
                num_epochs=config.num_epochs,
                num_iterations=config.num_iterations,
                body_learning_rate=config.body_learning_rate,
                head_learning_rate=config.head_learning_rate,
                max_length=config.max_length,
                seed=config.seed,
                show_progress_bar=False,
                report_to="none",
                save_strategy="no",
                logging_strategy="no",
            )
            trainer = Trainer(
                model=model,
                args=args,
                train_dataset=Dataset.from_dict({"text": list(texts), "label": targets}),
            )
            for printer in (PrinterCallback, ProgressCallback):  # they print the loss dicts
                trainer.remove_callback(printer)
            if config.freeze_body:
                cache = self._cache(model)
                if cache is None:
                    vectors = encode(model, texts, ENCODE_BATCH)
                else:
                    vectors = cache.embed(texts, lambda todo: encode(model, todo, ENCODE_BATCH))
                    logger.info("embeddings: %d cached, %d encoded", cache.hits, cache.misses)
                fit_head(model, vectors, targets)
            else:
                trainer.train()
                cache = self._cache(model)
        logger.info("trained SetFit on %d examples, %d labels", len(texts), len(names))
        return SetFitClassifier(model, cache)

    def load(self, path: Path) -> SetFitClassifier:
        offline()
        from setfit import SetFitModel

        logs.quiet_libraries()
        if not (path / "config_setfit.json").is_file():
            raise ModelError(f"{path} holds no SetFit model (config_setfit.json missing)")
        try:
            model = SetFitModel.from_pretrained(str(path), local_files_only=True)
        except Exception as exc:
            raise ModelError(f"cannot load the SetFit model in {path}: {exc}") from exc
        return SetFitClassifier(model, self._cache(model), self._precision)
