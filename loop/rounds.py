"""One training round: all agreed labels in, maybe a new promoted version out.

A round trains on every labelled document of the training split (never on the new batch
alone), scores the new version and the promoted one on the same frozen test set, registers
the new version with its evaluation and its per-document predictions, and promotes it when
it passes the gate. Most rounds refit only the head on the frozen sentence-transformer body
(fast); every ``full_finetune_every``-th round fine-tunes the whole model. A head-only round
starts from the body of the last full fine-tune behind the promoted version, so that a
fine-tune is not thrown away by the rounds that follow it.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from pydantic import BaseModel

from loop.errors import AlloopError
from loop.evaluation import Evaluation, Prediction, evaluate
from loop.labels import ResolvedLabel
from loop.models.base import (
    Classifier,
    ClassifierConfig,
    ClassifierFactory,
    applying,
    count_labels,
)
from loop.models.factories import load_version
from loop.promotion import Gate, Verdict, judge
from loop.registry import ModelRegistry
from loop.split import split

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoundConfig:
    """How rounds train, split and promote (stored with every version they make)."""

    test_fraction: float = 0.2
    full_finetune_every: int = 5
    """Every Nth round fine-tunes the body; the others refit the head only. 0: never."""
    gate: Gate = field(default_factory=Gate)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    min_labels: int = 2
    """Distinct labels the training split needs before a model is worth training."""


@dataclass
class RoundResult:
    """What a round did; printed as JSON by ``workers.train_round``."""

    version: str | None = None
    promoted: bool = False
    promoted_before: str | None = None
    skipped: str | None = None
    reasons: list[str] = field(default_factory=list)
    round: int = 0
    head_only: bool = True
    train_size: int = 0
    test_size: int = 0
    macro_f1: float | None = None
    base_macro_f1: float | None = None
    train_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def predict(
    classifier: Classifier, items: Sequence[ResolvedLabel], batch_size: int = 64
) -> list[Prediction]:
    """The classifier's top label (multi-label: the labels that apply) for each labelled
    item, as :class:`Prediction` rows."""
    if not items:
        return []
    probs = classifier.predict_proba([item.text for item in items], batch_size=batch_size)
    labels = classifier.labels
    if classifier.multi_label:
        return [
            Prediction(
                id=item.id,
                gold=sorted(item.labels or ()),
                predicted=sorted(applying(labels, row)),
                origin=item.origin,
            )
            for item, row in zip(items, probs, strict=True)
        ]
    return [
        Prediction(
            id=item.id,
            gold=str(item.label),
            predicted=labels[int(np.argmax(row))],
            origin=item.origin,
        )
        for item, row in zip(items, probs, strict=True)
    ]


def rounds_so_far(registry: ModelRegistry) -> int:
    """How many versions training rounds have registered."""
    count = 0
    for card in registry.cards():
        if card.counts.get("round") is not None:
            count += 1
    return count


def newest_label_at(labelled: Sequence[ResolvedLabel]) -> str | None:
    """When the newest answer behind a version was given (ISO 8601), for the label-to-served
    latency; None when no answer carries a time."""
    stamps = [item.labelled_at for item in labelled if item.labelled_at is not None]
    return max(stamps).isoformat() if stamps else None


def body_of(registry: ModelRegistry, version: str | None, kind: str) -> str | None:
    """The version whose fine-tuned body ``version`` uses: itself after a full fine-tune,
    else what its own round started from. ``None``: the packaged encoder (no version, another
    model kind, or a chain that began on the packaged encoder)."""
    if version is None:
        return None
    card = registry.card(version)
    if card.kind != kind:
        return None
    if card.training_args.get("freeze_body") is False:
        return version
    body = card.training_args.get("body_version")
    return str(body) if body else None


def settle(
    registry: ModelRegistry,
    result: RoundResult,
    version: str,
    head: tuple[BaseModel, Sequence[BaseModel]],
    base: tuple[BaseModel | None, Sequence[BaseModel]],
    verdict: Verdict,
) -> None:
    """The end of every round, whatever the task: record the new version's evaluation and
    per-document predictions beside those of the promoted version on the same test set (what
    deltas compare), then promote it if it passed the gate."""
    result.version = version
    registry.attach_metrics(
        version,
        {
            "evaluation": head[0].model_dump(),
            "predictions": [row.model_dump() for row in head[1]],
            "base": {
                "version": result.promoted_before,
                "evaluation": base[0].model_dump() if base[0] is not None else None,
                "predictions": [row.model_dump() for row in base[1]],
            },
            "gate": {"passed": verdict.passed, "reasons": verdict.reasons},
        },
    )
    if verdict.passed:
        registry.promote(version)
        result.promoted = True


def run_round(
    labelled: Sequence[ResolvedLabel],
    registry: ModelRegistry,
    factory: ClassifierFactory,
    config: RoundConfig = RoundConfig(),
) -> RoundResult:
    """Train, evaluate, register and maybe promote; see the module's description."""
    train, test = split(labelled, config.test_fraction)
    result = RoundResult(train_size=len(train), test_size=len(test))
    result.promoted_before = registry.promoted()
    classes = count_labels([item.target for item in train])
    if len(classes) < config.min_labels:
        result.skipped = (
            f"the training split has {len(classes)} distinct label(s) ({dict(classes)}); "
            f"at least {config.min_labels} are needed"
        )
        return result
    result.round = rounds_so_far(registry) + 1
    every = config.full_finetune_every
    result.head_only = not (every > 0 and result.round % every == 0)
    body = body_of(registry, result.promoted_before, factory.name) if result.head_only else None
    classifier_config = replace(
        config.classifier,
        freeze_body=result.head_only,
        body=str(registry.model_path(body)) if body else None,
    )

    started = time.monotonic()
    classifier = factory.train(
        [item.text for item in train], [item.target for item in train], classifier_config
    )
    result.train_seconds = round(time.monotonic() - started, 1)

    head_predictions = predict(classifier, test)
    multi_label = classifier.multi_label
    head = evaluate(head_predictions, classifier.labels, multi_label=multi_label)
    result.macro_f1 = head.macro_f1
    base: Evaluation | None = None
    base_predictions: list[Prediction] = []
    if result.promoted_before is not None:
        try:
            served = load_version(registry, result.promoted_before, factory)
            if served.multi_label != multi_label:
                raise AlloopError(
                    f"it is {'' if served.multi_label else 'not '}multi-label and the new "
                    "version is the other way round; they cannot be compared"
                )
            base_predictions = predict(served, test)
            base = evaluate(
                base_predictions, served.labels, result.promoted_before, multi_label=multi_label
            )
            result.base_macro_f1 = base.macro_f1
        except AlloopError as exc:
            logger.warning("cannot score the promoted %s: %s", result.promoted_before, exc)
    verdict = judge(head, base, config.gate)
    result.reasons = verdict.reasons

    newest = newest_label_at(labelled)
    card = registry.publish(
        classifier.save,
        labels=classifier.labels,
        kind=factory.name,
        training_args={
            **replace(classifier_config, body=None).to_dict(),
            "body_version": body,
            "test_fraction": config.test_fraction,
        },
        counts={
            "train": len(train),
            "test": len(test),
            "round": result.round,
            "per_label": dict(sorted(classes.items())),
            "train_origins": dict(sorted(Counter(i.origin or "unknown" for i in train).items())),
            "newest_label_at": newest,
        },
        parent=result.promoted_before,
        notes=(
            f"head refit on the frozen body of {body or 'the packaged encoder'}"
            if result.head_only
            else "full fine-tune"
        ),
    )
    head = head.model_copy(update={"version": card.version, "train_size": len(train)})
    settle(
        registry, result, card.version, (head, head_predictions), (base, base_predictions), verdict
    )
    logger.info(
        "round %d: %s trained on %d, macro-F1 %.3f on %d test docs (promoted %s: %s); %s",
        result.round,
        card.version,
        len(train),
        head.macro_f1,
        len(test),
        result.promoted_before,
        result.base_macro_f1,
        "promoted" if result.promoted else "not promoted: " + "; ".join(verdict.reasons),
    )
    return result
