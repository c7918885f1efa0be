"""One training round of the entity extractor: all agreed span labels in, maybe a new
promoted version out.

The same contract as classification rounds (:mod:`loop.rounds`): train on every labelled
document of the frozen training split, score the new version and the promoted one on the
same frozen test set, register the new version in the entity registry with its evaluation and
per-document predictions, and promote it when it passes the gate. The card records the
surface forms behind the version, which is how the scorer tells an unseen entity.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from loop.entities.base import (
    EntityExtractor,
    Example,
    ExtractorConfig,
    ExtractorFactory,
    Span,
    surface_form,
)
from loop.entities.evaluation import EntityEvaluation, EntityPrediction, evaluate_entities
from loop.entities.factories import load_extractor
from loop.entities.serving import mention
from loop.errors import AlloopError
from loop.labels import ResolvedLabel
from loop.promotion import Gate, judge
from loop.registry import ModelRegistry
from loop.rounds import RoundResult, newest_label_at, rounds_so_far, settle
from loop.split import split

logger = logging.getLogger(__name__)

TASK = "entities"


@dataclass(frozen=True)
class EntityRoundConfig:
    """How entity rounds train, split and promote."""

    types: tuple[str, ...]
    test_fraction: float = 0.2
    gate: Gate = field(default_factory=Gate)
    extractor: ExtractorConfig = field(default_factory=ExtractorConfig)


def example(item: ResolvedLabel) -> Example:
    """A labelled document as a training example (its agreed spans)."""
    spans = tuple(Span(m.start, m.end, m.label, m.text) for m in item.spans or ())
    return Example(item.text, spans)


def forms(items: Sequence[ResolvedLabel]) -> list[str]:
    """The surface forms of every labelled span, sorted."""
    return sorted({surface_form(m.text) for item in items for m in item.spans or ()})


def predict(
    extractor: EntityExtractor, items: Sequence[ResolvedLabel], batch_size: int = 32
) -> list[EntityPrediction]:
    """The extractor's spans beside the gold spans of each labelled document."""
    if not items:
        return []
    found = extractor.predict([item.text for item in items], batch_size)
    return [
        EntityPrediction(
            id=item.id,
            gold=list(item.spans or ()),
            predicted=[mention(s) for s in spans],
            origin=item.origin,
        )
        for item, spans in zip(items, found, strict=True)
    ]


def run_entity_round(
    labelled: Sequence[ResolvedLabel],
    registry: ModelRegistry,
    factory: ExtractorFactory,
    config: EntityRoundConfig,
) -> RoundResult:
    """Train, evaluate, register and maybe promote; see the module's description."""
    items = [item for item in labelled if item.spans is not None]
    train, test = split(items, config.test_fraction)
    result = RoundResult(train_size=len(train), test_size=len(test))
    result.promoted_before = registry.promoted()
    per_type = Counter(m.label for item in train for m in item.spans or ())
    if not per_type:
        result.skipped = f"the {len(train)} training document(s) hold no entity span yet"
        return result
    types = list(config.types) or sorted(per_type)
    result.round = rounds_so_far(registry) + 1
    extractor_config = replace(config.extractor, types=tuple(types))

    started = time.monotonic()
    extractor = factory.train([example(item) for item in train], extractor_config)
    result.train_seconds = round(time.monotonic() - started, 1)

    train_forms = forms(train)
    head_rows = predict(extractor, test)
    head = evaluate_entities(head_rows, types, train_forms)
    result.macro_f1 = head.macro_f1
    base: EntityEvaluation | None = None
    base_rows: list[EntityPrediction] = []
    if result.promoted_before is not None:
        try:
            card = registry.card(result.promoted_before)
            served = load_extractor(card.kind, registry.model_path(result.promoted_before))
            base_rows = predict(served, test)
            base_forms = [str(f) for f in card.counts.get("train_forms") or []]
            base = evaluate_entities(base_rows, types, base_forms, result.promoted_before)
            result.base_macro_f1 = base.macro_f1
        except AlloopError as exc:
            logger.warning("cannot score the promoted %s: %s", result.promoted_before, exc)
    verdict = judge(head, base, config.gate)
    result.reasons = verdict.reasons

    newest = newest_label_at(labelled)
    card = registry.publish(
        extractor.save,
        labels=types,
        task=TASK,
        kind=factory.name,
        training_args={**extractor_config.to_dict(), "test_fraction": config.test_fraction},
        counts={
            "train": len(train),
            "test": len(test),
            "round": result.round,
            "per_type": dict(sorted(per_type.items())),
            "train_origins": dict(sorted(Counter(i.origin or "unknown" for i in train).items())),
            "newest_label_at": newest,
            "forms": forms(items),
            "train_forms": train_forms,
        },
        parent=result.promoted_before,
        notes=f"{factory.name} trained on {len(train)} document(s)",
    )
    result.head_only = False
    head = head.model_copy(update={"version": card.version, "train_size": len(train)})
    settle(registry, result, card.version, (head, head_rows), (base, base_rows), verdict)
    logger.info(
        "entity round %d: %s trained on %d, macro-F1 %.3f on %d test docs (promoted %s: %s); %s",
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
