"""Does labeling that follows the drift learn a new source faster? A simulated stream that
switches source, labelled with and without the drift share, on real data.

The stream is financial tweets (the source the served version was made for); after
``reference_windows`` windows of tweets (the drift reference), banking77 utterances of
``intents`` intents join it, their share rising to ``top`` over ``ramp`` windows and staying
there for ``hold`` more. The task grows with the new source: annotators label a banking
utterance with its intent, a tweet with its sentiment, and one classifier learns both.

Each window, a selection round picks ``budget`` documents with the scorer's own code
(:func:`loop.classification.selection.select`, ranked by the newest head, as with
``ALLOOP_SCORER__SELECT_WITH_NEWEST``); the drift-aware arm then gives ``share`` of them to
the documents farthest from the reference (:func:`loop.drift.selection.with_drift`) on the
windows the drift report flagged (:func:`loop.drift.report.check`, the served version's
probabilities). The simulated annotator answers with the gold label, the head is refit on
every label (the trainer's head-only round on the packaged MiniLM body), and macro-F1 is read
on the new source's test set (banking77's test utterances of the same intents) and on
held-out tweets. The served version, and so the drift reference, stays the one before the
switch (no promotion during the run: the gate promotes on evidence, which takes labels).

Both arms of a seed see the same stream, the same seed labels and the same drift flags; the
area is macro-F1 against labels (scaled to [0, 1], from (0, 0)), as in the learning-curve
benchmark. Embeddings are computed once and kept in an embedding cache folder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.learning_curve import area
from loop.classification.base import ClassifierConfig
from loop.classification.selection import select
from loop.classification.setfit import logistic_head
from loop.datasets import DEFAULT_DATASET, read_tweets
from loop.drift.base import Window
from loop.drift.report import DriftConfig, check
from loop.drift.selection import with_drift
from loop.selection.base import Scored, SelectionConfig

BANKING = DEFAULT_DATASET.parent / "banking77"
Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Pool:
    """Embedded labelled texts of both sources: rows ``[0, old)`` are the stream's source
    (tweets), the rest the new one; the test sets of each source beside them."""

    vectors: Vectors
    gold: list[str]
    old: int
    old_test: Vectors
    old_test_gold: list[str]
    new_test: Vectors
    new_test_gold: list[str]

    @property
    def new_labels(self) -> list[str]:
        return sorted(set(self.new_test_gold))

    @property
    def old_labels(self) -> list[str]:
        return sorted(set(self.old_test_gold))


def shares(ramp: int, top: float, hold: int) -> list[float]:
    """The new source's share of each window after the reference: rising by ``top / ramp``
    per window up to ``top``, then ``hold`` windows at ``top``."""
    return [round(top * i / ramp, 6) for i in range(1, ramp + 1)] + [top] * hold


def stream(
    old: int, new: int, mix: Sequence[float], size: int, rng: np.random.Generator
) -> list[list[int]]:
    """Windows of ``size`` row numbers, each with its share of new-source rows (rows
    ``[0, old)`` are the old source, ``[old, old + new)`` the new one), none drawn twice."""
    counts = [round(share * size) for share in mix]
    if sum(counts) > new or sum(size - n for n in counts) > old:
        raise ValueError(
            f"the stream needs {sum(counts)} new and {sum(size - n for n in counts)} old "
            f"documents; the pool has {new} and {old}"
        )
    olds = iter(rng.permutation(old).tolist())
    news = iter((old + rng.permutation(new)).tolist())
    windows = []
    for n_new in counts:
        rows = [next(news) for _ in range(n_new)] + [next(olds) for _ in range(size - n_new)]
        windows.append([int(r) for r in rng.permutation(rows)])
    return windows


def fit(vectors: Vectors, gold: Sequence[str]) -> Any:
    """The trainer's head-only round: SetFit's logistic-regression head on fixed embeddings."""
    head = logistic_head(ClassifierConfig())
    head.fit(vectors, list(gold))
    return head


def macro_f1(head: Any, vectors: Vectors, gold: Sequence[str], labels: Sequence[str]) -> float:
    """Macro-F1 over ``labels`` (a prediction of any other label is a miss)."""
    from sklearn.metrics import f1_score

    predicted = head.predict(vectors)
    return float(f1_score(gold, predicted, labels=list(labels), average="macro", zero_division=0))


def flags(
    pool: Pool,
    served: Any,
    reference: list[int],
    windows: Sequence[list[int]],
    config: DriftConfig,
) -> list[bool]:
    """Whether the drift report of each window, against the reference, says drift (the
    served head's probabilities and the embeddings, as the scorer's monitor reads them)."""

    def window_of(rows: list[int]) -> Window:
        vectors = pool.vectors[rows]
        probabilities = np.asarray(served.predict_proba(vectors), dtype=np.float32)
        return Window(len(rows), vectors, probabilities, tuple(str(c) for c in served.classes_))

    base = window_of(reference)
    cache: dict[tuple[int, int], tuple[float, float]] = {}
    return [
        check(config.methods(null_cache=cache), base, window_of(w), config).drift for w in windows
    ]


def curve(
    pool: Pool,
    seed_rows: list[int],
    reference: list[int],
    windows: Sequence[list[int]],
    drifted: Sequence[bool],
    selection: SelectionConfig,
    share: float,
    seed: int,
) -> list[dict[str, Any]]:
    """One arm: per window, the labels so far, the new-source picks, and both macro-F1s
    after refitting on every label (``share`` 0: selection without the drift share)."""
    labelled = list(seed_rows)
    head = fit(pool.vectors[labelled], [pool.gold[i] for i in labelled])
    rng = np.random.default_rng(seed)
    reference_vectors = pool.vectors[reference]
    points = []
    for rows, drift in zip(windows, drifted, strict=True):
        names = [str(c) for c in head.classes_]
        probabilities = head.predict_proba(pool.vectors[rows])
        window = [
            Scored(str(r), "", dict(zip(names, map(float, p), strict=True)), pool.vectors[r])
            for r, p in zip(rows, probabilities, strict=True)
        ]
        counts: dict[str, int] = {}
        for i in labelled:
            counts[pool.gold[i]] = counts.get(pool.gold[i], 0) + 1
        picks = select(window, selection, counts, names, seed=int(rng.integers(1 << 31)))
        if drift and share > 0:
            picks = with_drift(window, picks, reference_vectors, share)
        picked = [int(p.id) for p in picks]
        labelled += picked
        head = fit(pool.vectors[labelled], [pool.gold[i] for i in labelled])
        points.append(
            {
                "labels": len(labelled) - len(seed_rows),
                "new_picked": sum(i >= pool.old for i in picked),
                "drift_picks": sum(p.reason == "drift" for p in picks),
                "new_f1": round(
                    macro_f1(head, pool.new_test, pool.new_test_gold, pool.new_labels), 4
                ),
                "old_f1": round(
                    macro_f1(head, pool.old_test, pool.old_test_gold, pool.old_labels), 4
                ),
            }
        )
    return points


def curve_area(points: Sequence[dict[str, Any]], key: str) -> float:
    """Area under ``key`` against labels, labels scaled to [0, 1]."""
    budget = points[-1]["labels"] if points else 1
    return area([(p["labels"], p[key]) for p in points], max(1, budget))


def cached_encoder(folder: Path) -> Callable[[list[str]], Vectors]:
    """The packaged MiniLM's embeddings, kept in ``folder`` between runs."""
    from loop.embeddings.backbone import PackagedEncoder
    from loop.embeddings.cache import EmbeddingCache

    cache = EmbeddingCache(folder, "packaged-all-minilm-l6-v2")
    encoder = PackagedEncoder()

    def embed(texts: list[str]) -> Vectors:
        return cache.embed(texts, lambda missing: encoder(missing, batch_size=128))

    return embed


def read_pool(
    embed: Callable[[list[str]], Vectors],
    *,
    intents: int,
    old_size: int,
    old_test: int,
    tweets_dir: Path = DEFAULT_DATASET,
    banking_dir: Path = BANKING,
) -> Pool:
    """Tweets (``old_size`` for the stream and the seed labels, ``old_test`` held out) and
    the banking utterances of the ``intents`` intents with most training examples."""
    from bench.drift import read_texts

    rng = np.random.default_rng(0)
    tweets = read_tweets(tweets_dir)
    order = rng.permutation(len(tweets))[: old_size + old_test]
    chosen = [(tweets[i].text, str(tweets[i].label)) for i in order]
    train = read_texts(banking_dir / "train.csv", "category")
    test = read_texts(banking_dir / "test.csv", "category")
    counts: dict[str, int] = {}
    for _, label in train:
        counts[str(label)] = counts.get(str(label), 0) + 1
    kept = set(sorted(counts, key=lambda k: (-counts[k], k))[:intents])
    new = [(t, str(g)) for t, g in train if g in kept]
    new_test = [(t, str(g)) for t, g in test if g in kept]
    stream_rows = chosen[:old_size] + new
    vectors = embed([t for t, _ in stream_rows + chosen[old_size:] + new_test])
    n = len(stream_rows)
    return Pool(
        vectors=vectors[:n],
        gold=[g for _, g in stream_rows],
        old=old_size,
        old_test=vectors[n : n + old_test],
        old_test_gold=[g for _, g in chosen[old_size:]],
        new_test=vectors[n + old_test :],
        new_test_gold=[g for _, g in new_test],
    )


def run(
    pool: Pool,
    *,
    seeds: int = 3,
    window: int = 200,
    reference_windows: int = 2,
    ramp: int = 10,
    top: float = 0.5,
    hold: int = 5,
    budget: int = 10,
    seed_labels: int = 100,
    share: float = 0.3,
    selection: SelectionConfig = SelectionConfig(),
    config: DriftConfig = DriftConfig(),
    progress: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:
    """Both arms on ``seeds`` streams; the areas, their differences and every curve."""
    mix = [0.0] * reference_windows + shares(ramp, top, hold)
    batch = SelectionConfig(**{**selection.__dict__, "batch_size": budget})
    runs = []
    for seed in range(seeds):
        rng = np.random.default_rng(2000 + seed)
        seed_rows = [int(i) for i in rng.permutation(pool.old)[:seed_labels]]
        rest = np.setdiff1d(np.arange(pool.old), seed_rows)
        windows = [
            [int(rest[r]) if r < len(rest) else r - len(rest) + pool.old for r in rows]
            for rows in stream(len(rest), len(pool.vectors) - pool.old, mix, window, rng)
        ]
        reference = [r for w in windows[:reference_windows] for r in w]
        served = fit(pool.vectors[seed_rows], [pool.gold[i] for i in seed_rows])
        drifted = flags(pool, served, reference, windows[reference_windows:], config)
        progress(f"seed {seed}: drift flagged on {sum(drifted)} of {len(drifted)} windows")
        arms = {}
        for name, arm_share in (("drift-aware", share), ("plain", 0.0)):
            points = curve(
                pool,
                seed_rows,
                reference,
                windows[reference_windows:],
                drifted,
                batch,
                arm_share,
                seed,
            )
            arms[name] = {
                "new_area": round(curve_area(points, "new_f1"), 4),
                "old_area": round(curve_area(points, "old_f1"), 4),
                "new_picked": sum(p["new_picked"] for p in points),
                "points": points,
            }
            progress(
                f"seed {seed} {name}: new-source area {arms[name]['new_area']}, final macro-F1 "
                f"{points[-1]['new_f1']}, {arms[name]['new_picked']} new-source labels"
            )
        runs.append({"seed": seed, "drifted": drifted, "arms": arms})
    return summarise(runs, window=window, budget=budget, share=share, top=top, ramp=ramp)


def summarise(runs: Sequence[dict[str, Any]], **setup: Any) -> dict[str, Any]:
    """Mean areas over the seeds and the per-seed differences (drift-aware minus plain)."""

    def per_seed(arm: str, key: str) -> list[float]:
        return [r["arms"][arm][key] for r in runs]

    gains = [
        round(a - b, 4)
        for a, b in zip(
            per_seed("drift-aware", "new_area"), per_seed("plain", "new_area"), strict=True
        )
    ]
    return {
        **setup,
        "seeds": len(runs),
        "runs": list(runs),
        "new_area": {
            arm: round(float(np.mean(per_seed(arm, "new_area"))), 4)
            for arm in ("drift-aware", "plain")
        },
        "old_area": {
            arm: round(float(np.mean(per_seed(arm, "old_area"))), 4)
            for arm in ("drift-aware", "plain")
        },
        "new_labels": {arm: per_seed(arm, "new_picked") for arm in ("drift-aware", "plain")},
        "new_area_gain": gains,
        "faster": bool(gains) and all(g > 0 for g in gains),
    }


def report(result: dict[str, Any]) -> str:
    lines = [
        f"windows of {result['window']} documents, {result['budget']} labels per window, "
        f"new source rising to {result['top']:.0%} over {result['ramp']} windows, "
        f"drift share {result['share']}"
    ]
    for r in result["runs"]:
        aware, plain = r["arms"]["drift-aware"], r["arms"]["plain"]
        lines.append(
            f"seed {r['seed']}: drift on {sum(r['drifted'])}/{len(r['drifted'])} windows; "
            f"new-source area {aware['new_area']} (drift-aware) vs {plain['new_area']} (plain), "
            f"new-source labels {aware['new_picked']} vs {plain['new_picked']}, "
            f"tweet area {aware['old_area']} vs {plain['old_area']}"
        )
        lines.append(
            "  new-source macro-F1 per window: "
            + " ".join(
                f"{a['new_f1']:.2f}/{p['new_f1']:.2f}"
                for a, p in zip(aware["points"], plain["points"], strict=True)
            )
        )
    lines.append(
        f"mean new-source area {result['new_area']['drift-aware']} (drift-aware) vs "
        f"{result['new_area']['plain']} (plain); gain per seed {result['new_area_gain']}"
    )
    return "\n".join(lines)
