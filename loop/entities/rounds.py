"""One training round of the entity extractor: all agreed span labels in, maybe a new
promoted version out.

The same contract as classification rounds (:mod:`loop.training.rounds`): train on every labelled
document outside the frozen test set, bring every earlier version and the patterns onto the
current test set, register the new version in the entity registry with its evaluation and
per-document predictions, and promote it when the gate finds evidence that it beats what
serves: the promoted version, or the patterns before the first one. The card records the
surface forms behind the version, which is how the scorer tells an unseen entity.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from loop.entities.base import (
    EntityExtractor,
    Example,
    ExtractorConfig,
    ExtractorFactory,
    Span,
    surface_form,
)
from loop.entities.evaluation import EntityPrediction, compare_entities, evaluate_entities
from loop.entities.factories import load_extractor
from loop.entities.merge import MergeRule, merge
from loop.entities.serving import mention
from loop.evaluation.base import MetricDelta, primary_delta
from loop.evaluation.scoreboard import Scores, TestSet, rescore
from loop.labels import ResolvedLabel
from loop.registry import ModelRegistry
from loop.training.gate import Gate
from loop.training.rounds import RoundResult, decide, rounds_so_far, settle, train_counts
from loop.training.split import split

logger = logging.getLogger(__name__)

TASK = "entities"


PATTERNS = "patterns"
"""The baseline's name while no entity version serves: the financial patterns."""


@dataclass(frozen=True)
class EntityRoundConfig:
    """How entity rounds train and promote."""

    types: tuple[str, ...]
    gate: Gate = field(default_factory=Gate)
    extractor: ExtractorConfig = field(default_factory=ExtractorConfig)
    patterns: EntityExtractor | None = None
    """What tags documents before the first version (the baseline a first version must beat),
    and beside every version after it: versions are scored as served, merged by ``merge``."""
    merge: MergeRule = MergeRule.GAZETTEER_FIRST


def example(item: ResolvedLabel) -> Example:
    """A labelled document as a training example (its agreed spans)."""
    spans = tuple(Span(m.start, m.end, m.label, m.text) for m in item.spans or ())
    return Example(item.text, spans)


def forms(items: Sequence[ResolvedLabel]) -> list[str]:
    """The surface forms of every labelled span, sorted."""
    return sorted({surface_form(m.text) for item in items for m in item.spans or ()})


def predict(
    extractor: EntityExtractor | None,
    items: Sequence[ResolvedLabel],
    batch_size: int = 32,
    *,
    patterns: EntityExtractor | None = None,
    rule: MergeRule = MergeRule.GAZETTEER_FIRST,
) -> list[EntityPrediction]:
    """The spans served for each labelled document, beside its gold spans: the extractor's,
    merged with the pattern matches by ``rule`` as the scorer and the API serve them
    (:mod:`loop.entities.merge`); the patterns alone without an extractor."""
    if not items:
        return []
    texts = [item.text for item in items]
    found: list[list[Span]] = (
        extractor.predict(texts, batch_size) if extractor is not None else [[] for _ in texts]
    )
    if patterns is not None:
        matches = patterns.predict(texts, batch_size)
        found = [
            merge(spans, hits, rule if extractor is not None else MergeRule.GAZETTEER_FIRST)
            for spans, hits in zip(found, matches, strict=True)
        ]
    return [
        EntityPrediction(
            id=item.id,
            gold=list(item.spans or ()),
            predicted=[mention(s) for s in spans],
            origin=item.origin,
        )
        for item, spans in zip(items, found, strict=True)
    ]


def version_scorer(
    registry: ModelRegistry, test: TestSet, config: EntityRoundConfig, types: Sequence[str]
) -> Callable[[str], Scores]:
    """How the scoreboard scores a registered entity version on ``test``, as served."""

    def score(version: str) -> Scores:
        card = registry.card(version)
        extractor = load_extractor(card.kind, registry.model_path(version))
        rows = predict(extractor, test.items, patterns=config.patterns, rule=config.merge)
        seen = [str(f) for f in card.counts.get("train_forms") or []]
        evaluation = evaluate_entities(rows, types, seen, version)
        return evaluation.model_copy(update={"train_size": card.counts.get("train")}), rows

    return score


def patterns_scorer(
    patterns: EntityExtractor, test: TestSet, types: Sequence[str]
) -> Callable[[], Scores]:
    """How the scoreboard scores the patterns (which learned no surface form)."""

    def score() -> Scores:
        rows = predict(None, test.items, patterns=patterns)
        return evaluate_entities(rows, types, (), PATTERNS).model_copy(
            update={"train_size": 0}
        ), rows

    return score


def run_entity_round(
    labelled: Sequence[ResolvedLabel],
    registry: ModelRegistry,
    factory: ExtractorFactory,
    config: EntityRoundConfig,
) -> RoundResult:
    """Train, evaluate, register and maybe promote; see the module's description."""
    items = [item for item in labelled if item.spans is not None]
    train, test_items = split(items)
    test = TestSet.of(test_items)
    result = RoundResult(train_size=len(train), test_size=test.size, test_origins=test.origins)
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

    baseline = None
    if config.patterns is not None:
        baseline = (PATTERNS, patterns_scorer(config.patterns, test, types))
    result.rescored = rescore(
        registry, test, version_scorer(registry, test, config, types), baseline=baseline
    )
    train_forms = forms(train)
    head_rows = predict(extractor, test.items, patterns=config.patterns, rule=config.merge)
    head = evaluate_entities(head_rows, types, train_forms)
    result.macro_f1 = head.macro_f1
    gate = config.gate

    def delta(base_rows: list[dict[str, Any]]) -> tuple[MetricDelta, Sequence[MetricDelta]]:
        found = compare_entities(
            [EntityPrediction.model_validate(row) for row in base_rows],
            head_rows,
            types,
            base_version=str(result.baseline),
            head_version="new",
            seen_forms=train_forms,
            confidence=gate.confidence,
        )
        return primary_delta(found, head), found.per_type

    serving = result.promoted_before or (PATTERNS if config.patterns is not None else None)
    verdict = decide(result, gate, serving, delta, registry, test)
    result.reasons = verdict.reasons

    card = registry.publish(
        extractor.save,
        labels=types,
        task=TASK,
        kind=factory.name,
        training_args=extractor_config.to_dict(),
        counts=train_counts(
            train,
            test,
            result,
            labelled,
            per_type=dict(sorted(per_type.items())),
            forms=forms(items),
            train_forms=train_forms,
        ),
        parent=result.promoted_before,
        notes=f"{factory.name} trained on {len(train)} document(s)",
    )
    result.head_only = False
    settle(
        registry,
        result,
        card.version,
        (head, head_rows),
        test,
        verdict,
        train_size=len(train),
        serving=serving,
        what="entity round",
    )
    return result
