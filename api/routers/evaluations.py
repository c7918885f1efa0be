"""What model owners read: evaluations, deltas between versions, improvement curves, the queue.

Everything here is computed from the registry (each version's ``metrics.json``, written by the
training round) and the label store; nothing loads a model.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from api.deps import TASK_DOC, State, task_registry
from api.errors import ApiError, UnknownTask
from api.schemas import QueueState
from loop.classification.evaluation import Evaluation, Prediction
from loop.entities.evaluation import (
    EntityDelta,
    EntityEvaluation,
    EntityPrediction,
    compare_entities,
)
from loop.errors import VersionNotFound
from loop.evaluation.curves import OVERALL, PER_LABEL, Curve, curves, render
from loop.evaluation.deltas import Delta, compare
from loop.evaluation.stopping import Stopping, from_registry
from loop.registry import ModelRegistry
from loop.settings import Settings

logger = logging.getLogger(__name__)

router = APIRouter(tags=["evaluations"])


class NotEvaluated(ApiError):
    """A version with no evaluation (trained by hand, or before any test label existed)."""

    status_code = 404
    code = "not_evaluated"


def _metrics(registry: ModelRegistry, version: str) -> dict[str, Any]:
    card = registry.card(version)  # VersionNotFound -> 404
    metrics = card.metrics or {}
    if "evaluation" not in metrics:
        raise NotEvaluated(
            f"{version} has no evaluation: only versions made by training rounds "
            "(alloop worker trainer) are scored on the frozen test set"
        )
    return metrics


def _evaluated(registry: ModelRegistry) -> list[str]:
    return [v for v in registry.versions() if "evaluation" in (registry.card(v).metrics or {})]


@router.get(
    "/v1/evaluations/deltas",
    summary="What changed between two versions",
    description="Per-label F1 deltas with a paired bootstrap confidence interval, macro-F1 and "
    "accuracy deltas, and the test documents that flipped (fixed: wrong to right; broken: right "
    "to wrong), on the test documents both versions were scored on (every version is scored "
    "again on the current test set after each round), each with its text when the label store "
    "has it. Defaults: `head` is the latest evaluated "
    "version, `base` what the gate compared it with (the version serving then, or `patterns` "
    "for the first entity version), else the evaluated version before it.",
)
def deltas(
    state: State,
    base: Annotated[str | None, Query(description="e.g. v0002")] = None,
    head: Annotated[str | None, Query(description="e.g. v0003")] = None,
    confidence: Annotated[float, Query(gt=0.5, lt=1)] = 0.95,
    task: Annotated[str, Query(description=TASK_DOC)] = "classification",
) -> Delta | EntityDelta:
    registry = task_registry(state, task)
    evaluated = _evaluated(registry)
    if head is None:
        if not evaluated:
            raise NotEvaluated("no version has an evaluation yet")
        head = evaluated[-1]
    head_metrics = _metrics(registry, head)
    recorded_base = (head_metrics.get("gate") or {}).get("baseline")
    if base is None:
        earlier = [v for v in evaluated if v < head]
        base = recorded_base or (earlier[-1] if earlier else None)
        if base is None:
            raise NotEvaluated(f"{head} is the first evaluated version: nothing to compare with")
    baseline = registry.baseline()
    if baseline is not None and base == baseline.get("name"):
        base_rows = baseline["predictions"]  # the patterns, before any entity version
    else:
        base_rows = _metrics(registry, base)["predictions"]
    if head_metrics["evaluation"].get("task") == "entities":
        head_eval = EntityEvaluation.model_validate(head_metrics["evaluation"])
        result: Delta | EntityDelta = compare_entities(
            [EntityPrediction.model_validate(r) for r in base_rows],
            [EntityPrediction.model_validate(r) for r in head_metrics["predictions"]],
            head_eval.types,
            base_version=base,
            head_version=head,
            seen_forms=registry.card(head).counts.get("train_forms") or [],
            confidence=confidence,
        )
        return _with_texts(state, task, result)
    labels = Evaluation.model_validate(head_metrics["evaluation"]).labels
    result = compare(
        [Prediction.model_validate(r) for r in base_rows],
        [Prediction.model_validate(r) for r in head_metrics["predictions"]],
        labels,
        base_version=base,
        head_version=head,
        confidence=confidence,
    )
    return _with_texts(state, task, result)


def _with_texts(state: State, task: str, delta: Delta | EntityDelta) -> Delta | EntityDelta:
    """The flipped documents with their texts, from the label store (the evaluations keep
    ids only); null for a document the store does not hold."""
    texts = {item.id: item.text for item in state.label_store().resolve(task)}
    return delta.model_copy(
        update={
            kind: [f.model_copy(update={"text": texts.get(f.id)}) for f in getattr(delta, kind)]
            for kind in ("fixed", "broken")
        }
    )


@router.get(
    "/v1/evaluations/{version}",
    summary="A version's evaluation on the frozen test set",
    description="Per-label precision, recall, F1, TP, FP, FN and support; micro and macro "
    "averages; the confusion matrix (raw and normalised per gold label; empty for a multi-label "
    "version, which is scored label by label); how many test labels came from random sampling "
    "and how many from active selection.",
)
def evaluation(
    state: State,
    version: str,
    task: Annotated[str, Query(description=TASK_DOC)] = "classification",
) -> Evaluation | EntityEvaluation:
    registry = task_registry(state, task)
    if version not in registry.versions():
        raise VersionNotFound(f"no {task} model version {version!r}")
    raw = _metrics(registry, version)["evaluation"]
    if raw.get("task") == "entities":
        return EntityEvaluation.model_validate(raw)
    return Evaluation.model_validate(raw)


@router.get(
    "/v1/curves",
    summary="Improvement curves: metrics against the number of labels",
    description="One point per evaluated version. Without `label`: overall metrics "
    f"({', '.join(OVERALL)}); with `label`: that label's ({', '.join(PER_LABEL)}). "
    "`format=png` or `svg` draws them; promoted versions are filled.",
    responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}},
)
def improvement_curves(
    state: State,
    metric: Annotated[list[str] | None, Query(description="Repeat for several")] = None,
    label: Annotated[str | None, Query(description="One label's (or entity type's) curves")] = None,
    format: Annotated[Literal["json", "png", "svg"], Query()] = "json",
    task: Annotated[str, Query(description=TASK_DOC)] = "classification",
) -> Any:
    registry = task_registry(state, task)
    entities = state.settings.is_entity_task(task)
    overall = ["macro_f1", "unseen_recall"] if entities else ["macro_f1", "accuracy"]
    chosen = metric or (overall if label is None else ["f1"])
    found: list[Curve] = curves(registry, chosen, label)
    if format == "json":
        return found
    media = "image/png" if format == "png" else "image/svg+xml"
    return Response(
        render(found, format, title=f"label {label}" if label else ""), media_type=media
    )


@router.get(
    "/v1/curves/stopping",
    summary="When to stop labeling",
    description="The macro-F1 gain of the newest version over the newest one trained on at "
    "least `last` fewer labels, with its paired bootstrap interval, and small-text's "
    "stabilizing-predictions criterion (KappaAverage): Cohen's kappa between consecutive "
    "versions' predictions on the test documents, `stop` when the mean of the last `window` "
    "reaches `kappa`. Classification only. See docs/evaluation.md.",
)
def stopping_signal(
    state: State,
    last: Annotated[int, Query(ge=1, description="Labels the gain is read over")] = 100,
    kappa: Annotated[float, Query(gt=0, le=1)] = 0.99,
    window: Annotated[int, Query(ge=1, le=20)] = 3,
    task: Annotated[str, Query(description="classification only")] = "classification",
) -> Stopping:
    if task != "classification":
        raise UnknownTask(f"the stopping signal is computed for classification, not {task!r}")
    return from_registry(state.registry, last=last, kappa=kappa, window=window)


@router.get(
    "/v1/queue",
    summary="Where the labels are",
    description="Answers in the label store (labelled, discarded, disputed, waiting), labels "
    "not yet in any version, and the last training round (when, how long, what it made).",
)
def queue(
    state: State, task: Annotated[str, Query(description=TASK_DOC)] = "classification"
) -> QueueState:
    settings = state.settings
    registry = task_registry(state, task)
    store = state.label_store()
    by_status: dict[str, int] = {}
    agreements: list[float] = []
    for item in store.resolve(task):
        by_status[item.status] = by_status.get(item.status, 0) + 1
        if item.agreement is not None:
            agreements.append(item.agreement)
    latest = registry.latest()
    trained = 0
    if latest is not None:
        counts = registry.card(latest).counts
        trained = int(counts.get("train", 0)) + int(counts.get("test", 0))
    from loop.training.status import TrainerStatus

    status = TrainerStatus.load(settings.home, task)
    pending, annotate_at = argilla_queue(settings, task)
    return QueueState(
        task=task,
        pending_in_argilla=pending,
        argilla_url=annotate_at,
        answers=store.count(task),
        documents=by_status,
        labelled=by_status.get("labelled", 0),
        not_yet_trained=max(0, by_status.get("labelled", 0) - trained),
        agreement=round(sum(agreements) / len(agreements), 4) if agreements else None,
        latest_version=latest,
        promoted_version=registry.promoted(),
        last_round_at=status.finished_at if status else None,
        last_round_seconds=status.duration_s if status else None,
        last_round_version=status.version if status else None,
        last_round_promoted=status.promoted if status else None,
    )


def argilla_queue(settings: Settings, task: str) -> tuple[int | None, str | None]:
    """Records of the task's dataset that nobody has completed, and the page where annotators
    answer them, asked of Argilla (3 s at most); None for what cannot be asked."""
    import httpx

    from connectors.argilla.queue import annotation_url, find_dataset, pending_in
    from loop.errors import AlloopError
    from stack.discovery import argilla_address

    name = f"{settings.argilla.dataset_prefix}-{task}"
    try:
        url, key = argilla_address(settings)
        with httpx.Client(
            base_url=url.rstrip("/"), headers={"X-Argilla-Api-Key": key}, timeout=3
        ) as http:
            found = find_dataset(http, name)
            if found is None:
                return 0, None
            return pending_in(http, found["id"]), annotation_url(url, found["id"])
    except (AlloopError, httpx.HTTPError, KeyError, ValueError) as exc:
        logger.info("cannot ask Argilla how many records are pending: %s", exc)
        return None, None
