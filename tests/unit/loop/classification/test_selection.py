"""Selection rounds: uncertainty via small-text, duplicates, rare labels, diversity, random
slice and cold start."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

import loop.classification.selection as selection
from loop.classification.selection import select
from loop.selection.base import Scored, SelectionConfig
from loop.selection.diversity import (
    DUPLICATE_BLOCK,
    Unique,
    coreset,
    representatives,
    without_duplicates,
)
from loop.selection.uncertainty import uncertainty

LABELS = ["down", "flat", "up"]


def doc(i: int, probs: list[float], vector: list[float] | None = None, text: str = "") -> Scored:
    return Scored(
        id=f"d{i}",
        text=text or f"text {i}",
        probabilities=dict(zip(LABELS, probs, strict=True)),
        embedding=None if vector is None else np.asarray(vector, dtype=np.float32),
    )


ENOUGH = {"down": 50, "flat": 50, "up": 50}


def test_uncertainty_measures_rank_as_their_definitions_say() -> None:
    probs = np.array([[0.34, 0.33, 0.33], [0.5, 0.45, 0.05], [0.9, 0.05, 0.05]], dtype=np.float32)
    margin = uncertainty("breaking-ties", probs)
    assert list(np.argsort(-margin)) == [0, 1, 2]
    assert margin[1] == pytest.approx(-0.05, abs=1e-6)  # minus the margin: higher is less sure
    entropy = uncertainty("entropy", probs)
    assert entropy[0] > entropy[1] > entropy[2]
    least = uncertainty("least-confidence", probs)
    assert least[0] > least[1] > least[2]
    with pytest.raises(ValueError, match="unknown strategy"):
        uncertainty("nonsense", probs)


@pytest.mark.parametrize(
    ("strategy", "query"), [("breaking-ties", "BreakingTies"), ("entropy", "PredictionEntropy")]
)
def test_the_row_by_row_strategies_score_as_small_text_does(strategy: str, query: str) -> None:
    """Breaking ties and entropy are computed over the whole window at once; small-text
    applies them row by row. Same scores, ties, zeros and float32 included."""
    import small_text.query_strategies as queries

    from loop.selection.uncertainty import SmallTextStrategy, _Precomputed

    rng = np.random.default_rng(7)
    windows = [rng.dirichlet(np.ones(k), size=500).astype(np.float32) for k in (2, 3, 6, 20)]
    windows.append(
        np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.2, 0.4, 0.4], [1 / 3] * 3], dtype=np.float32)
    )
    for probs in windows:
        indices = np.arange(len(probs))
        chosen = getattr(queries, query)()
        theirs = chosen.score(_Precomputed(), probs, indices, np.array([], dtype=int), None)
        ours = SmallTextStrategy(strategy, query).uncertainty(probs)
        np.testing.assert_allclose(ours, -np.asarray(theirs, dtype=np.float64), rtol=1e-6, atol=0)
        assert list(np.argsort(-ours, kind="stable")) == list(
            np.argsort(np.asarray(theirs, dtype=np.float64), kind="stable")
        )


def test_a_round_picks_the_most_uncertain_and_says_why() -> None:
    window = [doc(i, [0.9, 0.05, 0.05]) for i in range(30)] + [doc(99, [0.35, 0.33, 0.32])]
    config = SelectionConfig(batch_size=4, random_fraction=0.25, diversity=False, rare_examples=0)
    picks = select(window, config, ENOUGH, LABELS)
    assert len(picks) == 4 and len({p.id for p in picks}) == 4
    assert picks[0].id == "d99" and picks[0].reason == "uncertain"
    assert picks[0].strategy == "breaking-ties"
    assert [p.reason for p in picks].count("random") == 1


def test_near_duplicates_count_once() -> None:
    same = [1.0, 0.0, 0.0]
    window = [doc(i, [0.34, 0.33, 0.33], same) for i in range(10)]
    window += [
        doc(20, [0.4, 0.35, 0.25], [0.0, 1.0, 0.0]),
        doc(21, [0.45, 0.35, 0.2], [0.0, 0.0, 1.0]),
    ]
    config = SelectionConfig(batch_size=3, random_fraction=0.0, rare_examples=0)
    picks = select(window, config, ENOUGH, LABELS)
    copies = [p for p in picks if int(p.id[1:]) < 10]
    assert len(copies) == 1
    assert {p.id for p in picks} >= {"d20", "d21"}
    assert without_duplicates(
        [0, 1, 2], np.array([[1, 0], [1, 0.01], [0, 1]], dtype=np.float32), 0.95
    ) == [0, 2]


def test_the_core_set_spreads_the_batch_over_the_embedding_space() -> None:
    cluster = [[1.0, 0.0, 0.0], [0.99, 0.1, 0.0], [0.98, 0.15, 0.0], [0.97, 0.2, 0.0]]
    far = [[0.0, 0.0, 1.0]]
    embeddings = np.asarray(cluster + far, dtype=np.float32)
    assert coreset([0, 1, 2, 3, 4], embeddings, 2) == [0, 4]


def test_cold_start_representatives_stand_for_the_clusters_not_the_outliers() -> None:
    rng = np.random.default_rng(0)
    big = rng.normal([1.0, 0.0, 0.0], 0.05, size=(30, 3))  # most documents
    small = rng.normal([0.0, 1.0, 0.0], 0.05, size=(10, 3))
    outliers = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0]])
    embeddings = np.vstack([big, small, outliers]).astype(np.float32)
    everyone = list(range(len(embeddings)))

    picked = representatives(everyone, embeddings, 2, np.random.default_rng(1))
    spread = coreset(everyone, embeddings, 2)

    assert sorted(i // 30 if i < 40 else 2 for i in picked) == [0, 1]  # one per cluster
    assert {40, 41} & set(spread)  # the core-set reaches for an outlier instead
    assert representatives(everyone, None, 3, np.random.default_rng(1)) == [0, 1, 2]
    same = np.tile(np.asarray([[1.0, 0.0, 0.0]], dtype=np.float32), (6, 1))
    assert len(representatives(list(range(6)), same, 3, np.random.default_rng(1))) == 3


def test_a_cold_start_batch_with_embeddings_spans_the_clusters() -> None:
    rng = np.random.default_rng(0)
    centres = np.eye(4, dtype=np.float32)
    window = [
        Scored(id=f"c{c}-{i}", text=f"text {c} {i}", embedding=rng.normal(centres[c], 0.05))
        for c in range(4)
        for i in range(25)
    ]
    picks = select(window, SelectionConfig(batch_size=4), {}, LABELS)
    assert sorted(p.id.split("-")[0] for p in picks) == ["c0", "c1", "c2", "c3"]
    assert {p.strategy for p in picks} == {"representative"}


def test_labels_with_few_examples_get_their_share() -> None:
    window = [doc(i, [0.05, 0.5, 0.45]) for i in range(20)]  # all predicted flat, unsure
    window += [doc(100 + i, [0.6, 0.1, 0.3]) for i in range(5)]  # predicted down, surer
    config = SelectionConfig(batch_size=10, random_fraction=0.0, diversity=False, rare_share=0.3)
    picks = select(window, config, {"down": 4, "flat": 100, "up": 100}, LABELS)
    rare = [p for p in picks if p.reason == "rare"]
    assert rare and all(p.id.startswith("d10") for p in rare)
    assert len(rare) <= 3


def test_cold_start_uses_seed_keywords_then_representative_picks() -> None:
    window = [
        Scored(id=f"d{i}", text=t)
        for i, t in enumerate(
            ["$TSLA plunges", "nice weather", "USD/JPY rallies", "lunch", "$AAPL crash"]
        )
    ]
    config = SelectionConfig(
        batch_size=4, seed_keywords={"down": [r"\bplunge", "crash"], "up": ["rall"]}
    )
    picks = select(window, config, {}, LABELS)
    assert all(p.reason == "cold-start" for p in picks) and len(picks) == 4
    seeded = {p.strategy: p.id for p in picks if p.strategy.startswith("seed:")}
    assert seeded["seed:up"] == "d2"  # one seed per label short of examples
    assert seeded["seed:down"] in {"d0", "d4"}
    assert "seed:flat" not in seeded  # no keyword for it: random picks fill in


def test_random_strategy_is_the_baseline() -> None:
    window = [doc(i, [0.9, 0.05, 0.05]) for i in range(50)]
    picks = select(window, SelectionConfig(strategy="random", batch_size=5), ENOUGH, LABELS, seed=1)
    again = select(window, SelectionConfig(strategy="random", batch_size=5), ENOUGH, LABELS, seed=1)
    assert [p.id for p in picks] == [p.id for p in again]
    assert {p.reason for p in picks} == {"random"}


def test_duplicates_are_found_across_the_blocks_they_are_compared_in() -> None:
    """The block-wise comparison keeps exactly what comparing one document at a time with
    every kept one keeps, also when copies lie in different blocks."""
    rng = np.random.default_rng(7)
    base = rng.normal(size=(150, 16)).astype(np.float32)
    copies = base[rng.integers(0, 150, size=450)] + rng.normal(scale=0.01, size=(450, 16))
    embeddings = np.vstack([base, copies]).astype(np.float32)
    order = [int(i) for i in rng.permutation(len(embeddings))]
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    expected: list[int] = []
    for i in order:
        if not expected or float(np.max(unit[expected] @ unit[i])) < 0.95:
            expected.append(i)
    kept = without_duplicates(order, embeddings, 0.95)
    assert kept == expected
    assert len(kept) == 150


def test_the_unique_ranking_is_the_same_however_far_it_is_read() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(size=(300, 8)).astype(np.float32)
    copies = base[rng.integers(0, 300, size=700)] + rng.normal(scale=0.01, size=(700, 8))
    embeddings = np.vstack([base, copies]).astype(np.float32)
    order = [int(i) for i in rng.permutation(len(embeddings))]
    whole = without_duplicates(order, embeddings, 0.95)
    for read in (1, 40, DUPLICATE_BLOCK, len(whole)):
        unique = Unique(order, embeddings, 0.95)
        assert [i for i, _ in zip(unique, range(read), strict=False)] == whole[:read]
    unique = Unique(order, embeddings, 0.95)
    assert [i for i, _ in zip(unique, range(10), strict=False)] == whole[:10]
    assert list(unique) == whole  # read again from the start, then on to the end


class _Counted(Unique):
    """Unique, counting the documents it compared (``eager``: all of them at once)."""

    compared: ClassVar[list[int]] = []
    eager = False

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        if self.eager:
            list(self)

    def _compare_next_block(self) -> None:
        super()._compare_next_block()
        _Counted.compared.append(self._compared)


@pytest.mark.parametrize("rare", [False, True])
def test_a_round_compares_only_the_head_of_its_ranking_and_picks_the_same(
    monkeypatch: pytest.MonkeyPatch, rare: bool
) -> None:
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(2000, 16)).astype(np.float32)
    vectors[1000:] = vectors[:1000] + rng.normal(scale=0.001, size=(1000, 16))  # copies
    window = [doc(i, list(rng.dirichlet([1, 1, 1])), list(vectors[i])) for i in range(2000)]
    labelled = {**ENOUGH, "up": 2} if rare else ENOUGH
    monkeypatch.setattr(selection, "Unique", _Counted)
    picks = {}
    for eager in (True, False):
        _Counted.eager, _Counted.compared = eager, []
        picks[eager] = select(window, SelectionConfig(), labelled, LABELS)
        compared = max(_Counted.compared)
    assert picks[False] == picks[True]
    assert len(picks[False]) == 20
    assert ("rare" in {p.reason for p in picks[False]}) == rare
    assert compared == DUPLICATE_BLOCK  # the eager one compared all 2,000
