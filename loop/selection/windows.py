"""The scorer's selection windows: the documents it has tagged since the last round, per task,
and the rounds that pick candidates from them for people to label (classification by
uncertainty over the newest model's probabilities, entities by unseen forms, rarity and doubt),
plus the evaluation sample that goes to people outside the budget."""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from loop.classification.selection import select
from loop.classification.serving import NewestWatcher
from loop.drift.selection import with_drift
from loop.entities.selection import EntityScored, EntitySelectionConfig, select_entities
from loop.entities.serving import EntityTagger, mention
from loop.errors import AlloopError
from loop.messages import Candidate, TaggedDocument
from loop.registry import ModelRegistry
from loop.selection.base import Scored, SelectionConfig
from loop.training.rounds import body_of
from loop.training.split import EVALUATION, in_evaluation_sample

logger = logging.getLogger(__name__)


@dataclass
class RoundClock:
    """Counts documents and says when ``round_size`` more have arrived."""

    round_size: int
    since: int = 0

    def due(self, added: int) -> bool:
        self.since += added
        if self.since < self.round_size:
            return False
        self.since = 0
        return True


WindowEntry = tuple[TaggedDocument, Scored]


@dataclass
class NewestModel:
    """Selection ranks with the newest version the trainer made, promoted or not: the gate
    waits for evidence on a test set that grows slowly, and selecting with an older model
    spends labels on what the newer one already knows. The window's probabilities are
    recomputed from the embeddings the scorer already has when the newest version shares
    the body of the versions that tagged the window (head-only rounds); otherwise (a full
    fine-tune not promoted yet) the served probabilities stand, rather than encoding the
    window a second time."""

    watcher: NewestWatcher
    registry: ModelRegistry

    def rescore(self, entries: list[WindowEntry]) -> tuple[list[WindowEntry], str | None]:
        """The window as the newest version sees it, and the version that ranked it."""
        tagged_by = entries[-1][0].model_version
        newest = self.watcher.served
        if newest is None or newest.version == tagged_by or tagged_by is None:
            return entries, tagged_by
        model = newest.classifier
        if model.multi_label != (entries[-1][0].labels is not None):
            return entries, tagged_by
        texts = [doc.text for doc, _ in entries]
        if hasattr(model, "predict_from_embeddings"):
            vectors = [scored.embedding for _, scored in entries]
            try:
                kind = self.registry.card(newest.version).kind
                body = body_of(self.registry, newest.version, kind)
                # Documents tagged before any model were embedded by the packaged encoder.
                bodies = {
                    body_of(self.registry, v, kind) if v else None
                    for v in {doc.model_version for doc, _ in entries}
                }
            except AlloopError as exc:
                logger.warning("cannot rank with %s: %s", newest.version, exc)
                return entries, tagged_by
            if bodies != {body} or any(v is None for v in vectors):
                return entries, tagged_by
            probs = model.predict_from_embeddings(np.stack(vectors))  # type: ignore[arg-type]
        else:
            probs = model.predict_proba(texts)
        labels = model.labels
        return [
            (doc, replace(scored, probabilities=dict(zip(labels, map(float, row), strict=True))))
            for (doc, scored), row in zip(entries, probs, strict=True)
        ], newest.version


class CandidateRounds:
    """A bounded window of tagged documents and, every ``round_size`` of them, a selection
    round (:func:`loop.classification.selection.select`) whose picks become candidates for people."""

    def __init__(
        self,
        config: SelectionConfig,
        window_size: int,
        round_size: int,
        labelled: Callable[[str | None], dict[str, int]],
        newest: NewestModel | None = None,
        drifted_from: Callable[[str | None], npt.NDArray[np.float32] | None] | None = None,
        drift_share: float = 0.0,
    ) -> None:
        self.drifted_from = drifted_from
        self.drift_share = drift_share
        self.config = config
        self.clock = RoundClock(round_size)
        self.labelled = labelled
        self.newest = newest
        self.window: deque[WindowEntry] = deque(maxlen=window_size)

    def add(
        self, tagged: Sequence[TaggedDocument], embeddings: npt.NDArray[np.float32] | None
    ) -> list[Candidate]:
        for i, doc in enumerate(tagged):
            vector = (
                embeddings[i] if embeddings is not None and len(embeddings) == len(tagged) else None
            )
            self.window.append((doc, Scored(doc.id, doc.text, doc.probabilities, vector)))
        return self.round() if self.clock.due(len(tagged)) and self.window else []

    def round(self) -> list[Candidate]:
        """Select from the window; the picked documents leave it."""
        entries = list(self.window)
        ranked = entries
        version = entries[-1][0].model_version
        if self.newest is not None:
            ranked, version = self.newest.rescore(entries)
        counts = self.labelled(version)
        labels = sorted({k for _, s in ranked for k in s.probabilities}) or sorted(counts)
        multi_label = entries[-1][0].labels is not None  # the newest model's kind
        picks = select(
            [scored for _, scored in ranked],
            self.config,
            counts,
            labels,
            multi_label=multi_label,
        )
        tagged_by = entries[-1][0].model_version
        reference = self.drifted_from(tagged_by) if self.drifted_from else None
        if reference is not None:  # compared with what the same body embedded
            same = [s for d, s in entries if d.model_version == tagged_by]
            picks = with_drift(same, picks, reference, self.drift_share)
        by_id = {doc.id: doc for doc, _ in entries}
        chosen = {p.id for p in picks}
        self.window = deque(
            (e for e in entries if e[0].id not in chosen), maxlen=self.window.maxlen
        )
        out = []
        for pick in picks:
            doc = by_id[pick.id]
            out.append(
                Candidate(
                    id=doc.id,
                    text=doc.text,
                    model_version=doc.model_version,
                    strategy=pick.strategy,
                    score=pick.score,
                    reason=pick.reason,
                    probabilities=doc.probabilities,
                    multi_label=doc.labels is not None,
                    metadata=doc.metadata,
                )
            )
        logger.info(
            "selection round: %d candidates (%s) from a window of %d, ranked by %s",
            len(out),
            ", ".join(f"{r} {n}" for r, n in Counter(p.reason for p in picks).items()),
            len(entries),
            version or "no model",
        )
        return out


class EntityRounds:
    """The entity task's window and selection rounds (:mod:`loop.entities.selection`):
    unseen surface forms, rare types and doubtful documents become candidates whose
    suggestions are the model's spans and the pattern matches."""

    def __init__(
        self,
        task: str,
        tagger: EntityTagger,
        config: EntitySelectionConfig,
        window_size: int,
        round_size: int,
    ) -> None:
        self.task = task
        self.tagger = tagger
        self.config = config
        self.clock = RoundClock(round_size)
        self.window: deque[tuple[TaggedDocument, EntityScored]] = deque(maxlen=window_size)
        self.rounds = 0
        # Forms already sent to people while this version serves: not "unseen" again until
        # a version trained on their labels replaces it.
        self.routed: set[str] = set()
        self.routed_under: str | None = None

    def add(
        self, tagged: Sequence[TaggedDocument], scanned: Sequence[EntityScored]
    ) -> list[Candidate]:
        self.window.extend(zip(tagged, scanned, strict=True))
        return self.round() if self.clock.due(len(tagged)) and self.window else []

    def round(self) -> list[Candidate]:
        """Select from the window; the picked documents leave it."""
        entries = list(self.window)
        served = self.tagger.served
        version = self.tagger.version
        if version != self.routed_under:
            self.routed, self.routed_under = set(), version
        seen = (served.seen if served else frozenset()) | self.routed
        per_type = {t: (served.per_type.get(t, 0) if served else 0) for t in self.tagger.types}
        self.rounds += 1
        config = replace(self.config, seed=self.config.seed + self.rounds)
        picks = select_entities([s for _, s in entries], config, seen, per_type)
        self.routed.update(form for pick in picks for form in pick.unseen)
        by_id = {doc.id: doc for doc, _ in entries}
        chosen = {p.id for p in picks}
        self.window = deque(
            (e for e in entries if e[0].id not in chosen), maxlen=self.window.maxlen
        )
        out = [
            Candidate(
                id=pick.id,
                text=by_id[pick.id].text,
                task=self.task,
                model_version=version,
                strategy=pick.strategy,
                score=pick.score,
                reason=pick.reason,  # type: ignore[arg-type]
                spans=[mention(s) for s in pick.suggestions],
                metadata={**by_id[pick.id].metadata, "unseen": list(pick.unseen)}
                if pick.unseen
                else by_id[pick.id].metadata,
            )
            for pick in picks
        ]
        if out:
            logger.info(
                "entity round: %d candidates (%s) from a window of %d",
                len(out),
                ", ".join(f"{r} {n}" for r, n in Counter(p.reason for p in picks).items()),
                len(entries),
            )
        return out


def evaluation_candidates(
    tagged: Sequence[TaggedDocument], fraction: float, entity_task: str | None
) -> tuple[list[int], list[Candidate]]:
    """Split tagged documents into those left for selection (their positions) and the
    candidates of the evaluation sample (:func:`loop.training.split.in_evaluation_sample`): a uniform draw from the
    stream, apart from every selection strategy, that becomes the frozen test set once people
    label it. A drawn document goes to every task's dataset, with the model's suggestion."""
    rest: list[int] = []
    out: list[Candidate] = []
    for i, doc in enumerate(tagged):
        if not in_evaluation_sample(doc.id, fraction):
            rest.append(i)
            continue
        out.append(
            Candidate(
                id=doc.id,
                text=doc.text,
                model_version=doc.model_version,
                strategy="evaluation-sample",
                score=0.0,
                reason=EVALUATION,
                probabilities=doc.probabilities,
                multi_label=doc.labels is not None,
                metadata=doc.metadata,
            )
        )
        if entity_task is not None:
            out.append(
                Candidate(
                    id=doc.id,
                    text=doc.text,
                    task=entity_task,
                    model_version=doc.entity_version,
                    strategy="evaluation-sample",
                    score=0.0,
                    reason=EVALUATION,
                    spans=doc.entities,
                    metadata=doc.metadata,
                )
            )
    return rest, out
