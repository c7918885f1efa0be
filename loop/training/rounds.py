"""One training round: all agreed labels in, maybe a new promoted version out.

A round trains on every label that is not in the frozen test set (never on the new batch
alone; the test set is the evaluation sample and the owner's evaluation file, see
:mod:`loop.training.split`), brings every earlier version onto the current test set
(:mod:`loop.evaluation.scoreboard`), scores the new version on it, registers it with its evaluation and
its per-document predictions, and promotes it when the gate (:mod:`loop.training.gate`) finds
evidence that it beats the version that serves. Most rounds refit only the head on the frozen sentence-transformer body
(fast); every ``full_finetune_every``-th round fine-tunes the whole model. A head-only round
starts from the body of the last full fine-tune behind the promoted version, so that a
fine-tune is not thrown away by the rounds that follow it.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from pydantic import TypeAdapter

from loop.classification.base import (
    Classifier,
    ClassifierConfig,
    ClassifierFactory,
    applying,
    count_labels,
)
from loop.classification.evaluation import Prediction, evaluate
from loop.classification.factories import load_version
from loop.errors import AlloopError, PointerMoved
from loop.evaluation.base import MetricDelta, primary_delta
from loop.evaluation.deltas import compare
from loop.evaluation.scoreboard import Scores, TestSet, current_scores, rescore, scored
from loop.labels import ResolvedLabel
from loop.registry import ModelRegistry
from loop.training.gate import Gate, Verdict, judge, too_small
from loop.training.split import split

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoundConfig:
    """How rounds train and promote (stored with every version they make)."""

    full_finetune_every: int = 5
    """Every Nth round fine-tunes the body; the others refit the head only. 0: never."""
    gate: Gate = field(default_factory=Gate)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    min_labels: int = 2
    """Distinct labels the training split needs before a model is worth training."""


@dataclass
class RoundResult:
    """What a round did; printed as JSON by ``workers.train_round`` and read back by the\n    trainer with :meth:`from_json`."""

    version: str | None = None
    promoted: bool = False
    promoted_before: str | None = None
    skipped: str | None = None
    reasons: list[str] = field(default_factory=list)
    round: int = 0
    head_only: bool = True
    train_size: int = 0
    test_size: int = 0
    test_origins: dict[str, int] = field(default_factory=dict)
    macro_f1: float | None = None
    baseline: str | None = None
    """What the new version was judged against: the served version, or ``patterns``."""
    base_macro_f1: float | None = None
    delta: MetricDelta | None = None
    """The macro-F1 difference against the baseline, with its bootstrap interval."""
    rescored: list[str] = field(default_factory=list)
    """Earlier versions scored again because the test set changed."""
    train_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["delta"] = self.delta.model_dump() if self.delta is not None else None
        return data

    @classmethod
    def from_json(cls, text: str) -> RoundResult:
        """Read back what :meth:`to_dict` printed (keys it does not hold are ignored);
        ``pydantic.ValidationError`` when it is not a round's result."""
        return _ROUND_RESULT.validate_json(text)


_ROUND_RESULT = TypeAdapter(RoundResult)


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


def train_counts(
    train: Sequence[ResolvedLabel],
    test: TestSet,
    result: RoundResult,
    labelled: Sequence[ResolvedLabel],
    **task: Any,
) -> dict[str, Any]:
    """The counts every round's card holds (``task``: the task's own, e.g. per label)."""
    origins = Counter(item.origin or "unknown" for item in train)
    return {
        "train": len(train),
        "test": test.size,
        "round": result.round,
        **task,
        "train_origins": dict(sorted(origins.items())),
        "newest_label_at": newest_label_at(labelled),
    }


def settle(
    registry: ModelRegistry,
    result: RoundResult,
    version: str,
    head: Scores,
    test: TestSet,
    verdict: Verdict,
    *,
    train_size: int,
    serving: str | None,
    what: str = "round",
) -> None:
    """The end of every round, whatever the task: record the new version's evaluation on the
    current test set and what the gate decided, promote it if it passed, and log the outcome
    (``what`` names the round in the log, ``serving`` what it was judged against)."""
    evaluation, rows = head
    evaluation = evaluation.model_copy(update={"version": version, "train_size": train_size})
    _settle(registry, result, version, scored({}, (evaluation, rows), test), verdict)
    logger.info(
        "%s %d: %s trained on %d, macro-F1 %.3f on %d test docs %s (serving %s: %s); %s",
        what,
        result.round,
        version,
        train_size,
        result.macro_f1,
        test.size,
        test.origins,
        serving,
        result.base_macro_f1,
        "promoted" if result.promoted else "not promoted: " + "; ".join(verdict.reasons),
    )


def _settle(
    registry: ModelRegistry,
    result: RoundResult,
    version: str,
    metrics: dict[str, Any],
    verdict: Verdict,
) -> None:
    result.version = version
    registry.attach_metrics(
        version,
        {
            **metrics,
            "gate": {
                "passed": verdict.passed,
                "reasons": verdict.reasons,
                "baseline": result.baseline,
                "delta": result.delta.model_dump() if result.delta is not None else None,
                "test_size": result.test_size,
            },
        },
    )
    if verdict.passed:
        try:  # a promotion or rollback a person made while the round ran stands
            registry.promote(version, expected=result.promoted_before)
        except PointerMoved as exc:
            result.reasons.append(f"not promoted: {exc}")
            logger.warning("%s passed the gate but is not promoted: %s", version, exc)
            return
        result.promoted = True


def decide(
    result: RoundResult,
    gate: Gate,
    baseline: str | None,
    delta: Callable[[list[dict[str, Any]]], tuple[MetricDelta, Sequence[MetricDelta]]],
    registry: ModelRegistry,
    test: TestSet,
) -> Verdict:
    """The gate's verdict on the new version against ``baseline`` (what serves), whose
    predictions on ``test`` the scoreboard holds; ``delta`` compares them with the new
    version's. What serves but cannot be scored blocks the promotion."""
    result.baseline = baseline
    if baseline is None or too_small(test.size, gate):
        return judge(test.size, None, None, (), gate)
    held = current_scores(registry, baseline, test)
    if held is None:
        return Verdict(False, [f"the serving {baseline} could not be scored on the test set"])
    evaluation, rows = held
    result.base_macro_f1 = float(evaluation["macro"]["f1"])
    if not rows:
        return judge(test.size, baseline, None, (), gate)
    result.delta, per_label = delta(rows)
    return judge(test.size, baseline, result.delta, per_label, gate)


def version_scorer(
    registry: ModelRegistry, factory: ClassifierFactory, test: TestSet, multi_label: bool
) -> Callable[[str], Scores]:
    """How the scoreboard scores a registered classifier version on ``test``."""

    def score(version: str) -> Scores:
        model = load_version(registry, version, factory)
        if model.multi_label != multi_label:
            raise AlloopError(
                f"it is {'' if model.multi_label else 'not '}multi-label, unlike the task"
            )
        rows = predict(model, test.items)
        train_size = registry.card(version).counts.get("train")
        evaluation = evaluate(rows, model.labels, version, multi_label=multi_label)
        return evaluation.model_copy(update={"train_size": train_size}), rows

    return score


def score_versions(
    labelled: Sequence[ResolvedLabel],
    registry: ModelRegistry,
    factory: ClassifierFactory,
    multi_label: bool = False,
) -> TestSet:
    """Score every classifier version on the current test set (the seed model after
    ``alloop train``, or after the owner gave an evaluation file); return that test set."""
    test = TestSet.of(split(labelled)[1])
    rescore(registry, test, version_scorer(registry, factory, test, multi_label))
    return test


def run_round(
    labelled: Sequence[ResolvedLabel],
    registry: ModelRegistry,
    factory: ClassifierFactory,
    config: RoundConfig = RoundConfig(),
) -> RoundResult:
    """Train, evaluate, register and maybe promote; see the module's description."""
    train, test_items = split(labelled)
    test = TestSet.of(test_items)
    result = RoundResult(train_size=len(train), test_size=test.size, test_origins=test.origins)
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

    multi_label = classifier.multi_label
    result.rescored = rescore(registry, test, version_scorer(registry, factory, test, multi_label))
    head_rows = predict(classifier, test.items)
    head = evaluate(head_rows, classifier.labels, multi_label=multi_label)
    result.macro_f1 = head.macro_f1
    gate = config.gate

    def delta(base_rows: list[dict[str, Any]]) -> tuple[MetricDelta, Sequence[MetricDelta]]:
        found = compare(
            [Prediction.model_validate(row) for row in base_rows],
            head_rows,
            classifier.labels,
            base_version=str(result.promoted_before),
            head_version="new",
            confidence=gate.confidence,
        )
        return primary_delta(found, head), found.per_label

    verdict = decide(result, gate, result.promoted_before, delta, registry, test)
    result.reasons = verdict.reasons

    card = registry.publish(
        classifier.save,
        labels=classifier.labels,
        kind=factory.name,
        training_args={**replace(classifier_config, body=None).to_dict(), "body_version": body},
        counts=train_counts(train, test, result, labelled, per_label=dict(sorted(classes.items()))),
        parent=result.promoted_before,
        notes=(
            f"head refit on the frozen body of {body or 'the packaged encoder'}"
            if result.head_only
            else "full fine-tune"
        ),
    )
    settle(
        registry,
        result,
        card.version,
        (head, head_rows),
        test,
        verdict,
        train_size=len(train),
        serving=result.promoted_before,
    )
    return result
