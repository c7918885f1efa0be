"""Which documents people should label: a classification round over a window of scored documents.

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
from itertools import islice

import numpy as np
import numpy.typing as npt

from loop.classification.base import MULTI_LABEL_THRESHOLD
from loop.selection.base import Pick, Scored, SelectionConfig
from loop.selection.diversity import Unique, coreset, representatives, without_duplicates
from loop.selection.uncertainty import RandomSampling, strategy_for, uncertainty


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
    if isinstance(strategy_for(config.strategy), RandomSampling):  # uniform, no cold start
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
    # The ranking without near-duplicates, compared only as far as the picks below read it.
    ranking = Unique(np.argsort(-scores, kind="stable"), embeddings, config.duplicate_threshold)

    # Labels with few examples: their most uncertain predicted members first.
    rare = [k for k in names if labelled.get(k, 0) < config.rare_examples]
    budget_rare = int(n * config.rare_share) if rare else 0
    if multi_label:  # a document is a predicted member of every label that applies
        member = probabilities >= MULTI_LABEL_THRESHOLD
    else:
        member = np.eye(len(names), dtype=bool)[probabilities.argmax(axis=1)]
    for label in sorted(rare, key=lambda k: labelled.get(k, 0)):
        column = names.index(label)
        wanted = max(1, budget_rare // max(1, len(rare)))
        members = list(islice((i for i in ranking if member[i, column] and i not in taken), wanted))
        for i in members:
            if len([p for p in picks if p.reason == "rare"]) >= budget_rare:
                break
            picks.append(Pick(window[i].id, round(float(scores[i]), 6), "rare", config.strategy))
            taken.add(i)

    n_uncertain = n - n_random - len(picks)
    pool_size = max(n_uncertain, 0) * max(config.pool_factor, 1)
    pool = list(islice((i for i in ranking if i not in taken), pool_size))
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
