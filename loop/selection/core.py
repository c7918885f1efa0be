"""Which documents people should label: a round of selection over a window of scored documents.

A round ranks the window with an uncertainty strategy (small-text's breaking ties, prediction
entropy or least confidence, run on the probabilities the scorer already computed: the model is
not called again), drops near-duplicates (ten copies of one confusing tweet are one record),
gives labels with few examples their share, picks a diverse batch from the most uncertain
(small-text's greedy core-set on the MiniLM embeddings), and adds a random slice (exploration,
trained on: the test set is the scorer's evaluation sample, :mod:`loop.training.split`). Before the first model, or while a label has fewer than
``cold_start_examples`` labels, keyword seeds from the task config and representative picks
fill the batch instead.

For a multi-label model every label is its own yes/no question, so a document is uncertain
when some label's probability is near 0.5: breaking ties and least confidence rank by the label
closest to 0.5 (1 - min |2p - 1|), entropy by the mean binary entropy of the labels.

Every pick says why it was chosen: ``uncertain``, ``rare``, ``random`` or ``cold-start``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from loop.classification.base import MULTI_LABEL_THRESHOLD

Reason = Literal["uncertain", "rare", "random", "cold-start"]
STRATEGIES = ("breaking-ties", "entropy", "least-confidence", "random")


@dataclass(frozen=True)
class Scored:
    """A document in the window: its id, text, the model's probabilities (empty before the
    first model) over ``labels``, and its embedding (or None)."""

    id: str
    text: str
    probabilities: Mapping[str, float] = field(default_factory=dict)
    embedding: npt.NDArray[np.float32] | None = None


@dataclass(frozen=True)
class Pick:
    id: str
    score: float
    reason: Reason
    strategy: str


@dataclass(frozen=True)
class SelectionConfig:
    """How a round selects (stored with the candidates it makes)."""

    strategy: str = "breaking-ties"
    """Uncertainty measure: breaking-ties (margin), entropy, least-confidence, or random."""
    batch_size: int = 20
    """Candidates per round."""
    random_fraction: float = 0.1
    """Share of each batch picked uniformly at random (reason ``random``)."""
    diversity: bool = True
    """Pick the batch as a core-set of the most uncertain, on the embeddings."""
    pool_factor: int = 4
    """The core-set chooses among the ``pool_factor * batch_size`` most uncertain."""
    duplicate_threshold: float = 0.95
    """Cosine similarity above which two documents count as one."""
    rare_examples: int = 8
    """A label with fewer labelled examples than this gets a share of the batch."""
    rare_share: float = 0.3
    """Most of the batch that rare labels may take."""
    cold_start_examples: int = 1
    """Until every label has this many labels, seed keywords and random picks fill the batch
    (before the first model, always)."""
    seed_keywords: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Label -> keywords or regular expressions whose matches are likely examples of it."""


class _Precomputed:
    """A small-text classifier stand-in whose 'dataset' is the probability matrix itself."""

    def predict_proba(self, dataset: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return dataset


def label_uncertainty(
    strategy: str, probabilities: npt.NDArray[np.float32]
) -> npt.NDArray[np.float64]:
    """Uncertainty of multi-label predictions (independent probabilities), higher is more
    uncertain, from 0 (every label certain) to 1 (some label, or all for entropy, at 0.5)."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, 1 - 1e-12)
    if len(p) == 0 or p.shape[1] == 0:
        return np.zeros(len(p))
    if strategy in ("breaking-ties", "least-confidence"):
        return np.asarray(1 - np.abs(2 * p - 1).min(axis=1))
    if strategy == "entropy":
        return np.asarray((-(p * np.log2(p) + (1 - p) * np.log2(1 - p))).mean(axis=1))
    raise ValueError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")


def uncertainty(
    strategy: str, probabilities: npt.NDArray[np.float32], multi_label: bool = False
) -> npt.NDArray[np.float64]:
    """Higher is more uncertain, with small-text's query strategies doing the scoring (for
    single-label probabilities; see :func:`label_uncertainty` for multi-label ones)."""
    from small_text.query_strategies import BreakingTies, LeastConfidence, PredictionEntropy

    if multi_label:
        return label_uncertainty(strategy, probabilities)
    if len(probabilities) == 0:
        return np.zeros(0)
    indices = np.arange(len(probabilities))
    chosen: Any
    if strategy == "breaking-ties":
        chosen = BreakingTies()
    elif strategy == "entropy":
        chosen = PredictionEntropy()
    elif strategy == "least-confidence":
        chosen = LeastConfidence()
    else:
        raise ValueError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    # small-text's score: lower means query first (it negates where higher is better).
    scores = chosen.score(_Precomputed(), probabilities, indices, np.array([], dtype=int), None)
    return -np.asarray(scores, dtype=np.float64)


def _unit(rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.asarray(rows / np.where(norms == 0, 1, norms), dtype=np.float32)


def without_duplicates(
    order: Sequence[int], embeddings: npt.NDArray[np.float32] | None, threshold: float
) -> list[int]:
    """Keep the first of every group of near-identical documents (in ``order``)."""
    if embeddings is None or threshold >= 1:
        return list(order)
    unit = _unit(embeddings)
    kept: list[int] = []
    for i in order:
        if kept and float(np.max(unit[kept] @ unit[i])) >= threshold:
            continue
        kept.append(i)
    return kept


def coreset(
    candidates: Sequence[int], embeddings: npt.NDArray[np.float32] | None, n: int
) -> list[int]:
    """``n`` diverse documents among ``candidates`` (small-text's greedy core-set)."""
    if n >= len(candidates) or embeddings is None:
        return list(candidates)[:n]
    from small_text.query_strategies.coresets import greedy_coreset

    # Slightly shorter than unit length, so that rounding never pushes a cosine above 1 (its
    # arccos would be NaN, and a NaN distance would win the core-set's argmax).
    pool = _unit(embeddings[list(candidates)]) * np.float32(1 - 1e-4)
    # Seed the core-set with the most uncertain one, as if it were already labelled.
    chosen = greedy_coreset(pool, np.arange(len(pool)), np.array([0]), n - 1, normalized=True)
    return [candidates[0], *(candidates[int(i)] for i in chosen)]


def representatives(
    candidates: Sequence[int],
    embeddings: npt.NDArray[np.float32] | None,
    n: int,
    rng: np.random.Generator,
) -> list[int]:
    """``n`` documents that stand for the whole of ``candidates``: the one nearest each
    centre of a k-means clustering of their embeddings. Unlike a core-set, which reaches for
    the outliers, this samples where the documents are, which is what a first model needs."""
    if n >= len(candidates) or embeddings is None or n <= 0:
        return list(candidates)[: max(n, 0)]
    from sklearn.cluster import KMeans

    pool = _unit(embeddings[list(candidates)])
    model = KMeans(n_clusters=n, n_init=1, random_state=int(rng.integers(1 << 31))).fit(pool)
    distance = model.transform(pool)  # documents x centres
    chosen: list[int] = []
    for cluster in range(n):
        members = np.flatnonzero(model.labels_ == cluster)
        if len(members):
            chosen.append(int(members[distance[members, cluster].argmin()]))
    # Identical documents make fewer clusters than asked for: the rest, in the given order.
    picked = list(dict.fromkeys(chosen))
    taken = set(picked)
    picked += [i for i in range(len(candidates)) if i not in taken][: n - len(picked)]
    return [candidates[i] for i in picked]


def _matches(text: str, patterns: Sequence[str]) -> bool:
    return any(re.search(p, text, flags=re.IGNORECASE) for p in patterns)


def select(
    window: Sequence[Scored],
    config: SelectionConfig,
    labelled: Mapping[str, int],
    labels: Sequence[str] = (),
    *,
    seed: int = 0,
    multi_label: bool = False,
) -> list[Pick]:
    """One round: up to ``config.batch_size`` picks from ``window``, best first.

    ``labelled`` counts labels per class so far; ``labels`` lists every class of the task;
    ``multi_label``: the probabilities are independent, one per label.
    """
    if not window:
        return []
    rng = np.random.default_rng(seed)
    n = min(config.batch_size, len(window))
    vectors = [d.embedding for d in window if d.embedding is not None]
    embeddings = np.stack(vectors).astype(np.float32) if len(vectors) == len(window) else None
    if config.strategy == "random":  # the baseline: uniform, no cold-start rules either
        order = [int(i) for i in rng.permutation(len(window))]
        return [Pick(window[i].id, 0.0, "random", "random") for i in order[:n]]
    names = list(labels) or sorted({k for d in window for k in d.probabilities})
    scored = bool(names) and all(d.probabilities for d in window)
    cold = not scored or any(labelled.get(label, 0) < config.cold_start_examples for label in names)
    if cold:
        return _cold_start(window, config, labelled, names, embeddings, n, rng)

    probabilities = np.array(
        [[d.probabilities.get(k, 0.0) for k in names] for d in window], dtype=np.float32
    )
    picks: list[Pick] = []
    taken: set[int] = set()
    n_random = round(n * config.random_fraction)
    n_random = min(n_random, n)
    scores = uncertainty(config.strategy, probabilities, multi_label)
    order = without_duplicates(
        list(np.argsort(-scores, kind="stable")), embeddings, config.duplicate_threshold
    )

    # Labels with few examples: their most uncertain predicted members first.
    rare = [k for k in names if labelled.get(k, 0) < config.rare_examples]
    budget_rare = int(n * config.rare_share) if rare else 0
    if multi_label:  # a document is a predicted member of every label that applies
        member = probabilities >= MULTI_LABEL_THRESHOLD
    else:
        member = np.eye(len(names), dtype=bool)[probabilities.argmax(axis=1)]
    for label in sorted(rare, key=lambda k: labelled.get(k, 0)):
        column = names.index(label)
        members = [i for i in order if member[i, column] and i not in taken]
        for i in members[: max(1, budget_rare // max(1, len(rare)))]:
            if len([p for p in picks if p.reason == "rare"]) >= budget_rare:
                break
            picks.append(Pick(window[i].id, round(float(scores[i]), 6), "rare", config.strategy))
            taken.add(i)

    n_uncertain = n - n_random - len(picks)
    pool = [i for i in order if i not in taken][: max(n_uncertain, 0) * max(config.pool_factor, 1)]
    chosen = coreset(pool, embeddings, n_uncertain) if config.diversity else pool[:n_uncertain]
    for i in chosen:
        picks.append(Pick(window[i].id, round(float(scores[i]), 6), "uncertain", config.strategy))
        taken.add(i)

    rest = [i for i in range(len(window)) if i not in taken]
    for i in rng.permutation(rest)[: n - len(picks)]:
        picks.append(
            Pick(window[int(i)].id, round(float(scores[int(i)]), 6), "random", config.strategy)
        )
    return picks


def _cold_start(
    window: Sequence[Scored],
    config: SelectionConfig,
    labelled: Mapping[str, int],
    names: Sequence[str],
    embeddings: npt.NDArray[np.float32] | None,
    n: int,
    rng: np.random.Generator,
) -> list[Pick]:
    """Keyword seeds for the labels short of examples, then representative picks (one per
    k-means cluster of the embeddings; random picks when there are none)."""
    picks: list[Pick] = []
    taken: set[int] = set()
    short = [
        k
        for k in (names or config.seed_keywords)
        if labelled.get(k, 0) < config.cold_start_examples
    ]
    per_label = max(1, n // (2 * max(len(short), 1)))
    for label in short:
        patterns = config.seed_keywords.get(label, ())
        hits = [
            i
            for i, d in enumerate(window)
            if i not in taken and patterns and _matches(d.text, patterns)
        ]
        for i in without_duplicates(hits, embeddings, config.duplicate_threshold)[:per_label]:
            if len(picks) >= n:
                break
            picks.append(Pick(window[i].id, 1.0, "cold-start", f"seed:{label}"))
            taken.add(i)
    rest = [int(i) for i in rng.permutation(len(window)) if int(i) not in taken]
    rest = without_duplicates(rest, embeddings, config.duplicate_threshold)
    wanted = n - len(picks)
    fill = representatives(rest, embeddings, wanted, rng) if config.diversity else rest[:wanted]
    for i in fill:
        picks.append(Pick(window[i].id, 0.0, "cold-start", "representative"))
    return picks
