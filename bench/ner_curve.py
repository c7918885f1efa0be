"""Does entity selection beat random sampling? NER learning curves with simulated annotators.

For each seed and each of the two strategies, start from ``step`` random sentences, then
repeat: train the extractor (the trainer's, :func:`loop.entities.factories.factory_for`) on
every sentence labelled so far, score strict span F1 and unseen-entity recall on the test
set, run the extractor over a window of unlabelled sentences and pick the next ``step`` with
the scorer's entity selection (:func:`loop.entities.selection.select_entities`: unseen
surface forms, rare types, doubtful documents, a random slice; what it leaves unfilled is
filled at random), or uniformly at random for the baseline; until ``budget`` sentences.
"Labelling" reveals the gold spans. The full-data score trains once on the whole pool.

Prints a table, writes a PNG and a JSON, and prints as its last line a JSON object with the
area under each curve (mean micro-F1 over seeds against labels scaled to [0, 1]), the labels
each needs to reach 90 % of the full-data F1, unseen-entity recall along the curves, and the
full-data F1.
"""

from __future__ import annotations

import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.learning_curve import area, draw_spread, write
from loop.entities.base import Example, ExtractorConfig, analyse, surface_form
from loop.entities.conll import read_examples
from loop.entities.factories import factory_for
from loop.entities.metrics import micro, span_counts, unseen_recall
from loop.entities.selection import EntityScored, EntitySelectionConfig, select_entities
from loop.evaluation.curves import pyplot

WINDOW = 1500
"""Unlabelled sentences scored per step (a random subsample, like the scorer's window)."""
TARGET = 0.9
"""Share of the full-data F1 the report asks about."""


def seen_forms(examples: Sequence[Example]) -> set[str]:
    return {surface_form(s.text) for e in examples for s in e.spans}


def score(extractor: Any, test: Sequence[Example], seen: set[str]) -> tuple[float, float]:
    """Strict micro-F1 and recall on test spans whose form is not in ``seen``."""
    predicted = extractor.predict([e.text for e in test], 64)
    gold = [list(e.spans) for e in test]
    f1 = micro(span_counts(gold, predicted).values()).f1
    recall, _ = unseen_recall(gold, predicted, seen)
    return f1, recall


def curve(
    kind: str,
    config: ExtractorConfig,
    pool: Sequence[Example],
    test: Sequence[Example],
    strategy: str,
    budget: int,
    step: int,
    seed: int,
) -> list[tuple[int, float, float]]:
    """(labels, micro-F1, unseen recall) after every step of one simulated run."""
    rng = random.Random(seed)
    order = list(range(len(pool)))
    rng.shuffle(order)
    labelled: list[int] = order[:step]
    points: list[tuple[int, float, float]] = []
    factory = factory_for(kind)
    while True:
        train = [pool[i] for i in labelled]
        extractor = factory.train(train, replace(config, seed=seed))
        seen = seen_forms(train)
        f1, unseen = score(extractor, test, seen)
        points.append((len(labelled), f1, unseen))
        print(
            f"  {strategy:20} seed {seed}: {len(labelled):5} labels, F1 {f1:.3f}, "
            f"unseen recall {unseen:.3f}",
            file=sys.stderr,
            flush=True,
        )
        if len(labelled) >= budget:
            return points
        taken = set(labelled)
        unlabelled = [i for i in range(len(pool)) if i not in taken]
        window = rng.sample(unlabelled, min(WINDOW, len(unlabelled)))
        want = min(step, budget - len(labelled))
        picked: list[int] = []
        if strategy != "random":
            found = analyse(extractor, [pool[i].text for i in window], 64)
            items = [
                EntityScored(str(i), pool[i].text, tuple(spans), tuple(near))
                for i, (spans, near) in zip(window, found, strict=True)
            ]
            per_type = Counter(s.label for e in train for s in e.spans)
            types = extractor.types
            picks = select_entities(
                items,
                EntitySelectionConfig(batch_size=want, seed=rng.randrange(1 << 30)),
                seen,
                {t: per_type.get(t, 0) for t in types},
            )
            picked = [int(p.id) for p in picks]
        rest = [i for i in window if i not in set(picked)]
        picked += rng.sample(rest, want - len(picked))
        labelled += picked


def run(
    train: Path,
    test: Path,
    *,
    kind: str = "minilm-tagger",
    strategy: str = "entity-uncertainty",
    baseline: str = "random",
    seeds: int = 3,
    budget: int = 1000,
    step: int = 200,
    epochs: int = 5,
    time_budget_s: float = 900.0,
    full_time_budget_s: float = 3600.0,
    out: Path = Path("bench/results/ner-curve"),
) -> dict[str, Any]:
    pool = read_examples(train)
    testset = read_examples(test)
    types = sorted({s.label for e in [*pool, *testset] for s in e.spans})
    config = ExtractorConfig(types=tuple(types), epochs=epochs, time_budget_s=time_budget_s)
    started = time.monotonic()
    print(f"full data: training on {len(pool)} sentences", file=sys.stderr, flush=True)
    full_model = factory_for(kind).train(pool, replace(config, time_budget_s=full_time_budget_s))
    full_f1, full_unseen = score(full_model, testset, seen_forms(pool))
    print(f"full data: F1 {full_f1:.3f}, unseen recall {full_unseen:.3f}", file=sys.stderr)

    runs: dict[str, list[list[tuple[int, float, float]]]] = {}
    for name in (strategy, baseline):
        runs[name] = [
            curve(kind, config, pool, testset, name, budget, step, seed) for seed in range(seeds)
        ]

    summary: dict[str, Any] = {
        "train": str(train),
        "test": str(test),
        "kind": kind,
        "types": types,
        "pool": len(pool),
        "test_size": len(testset),
        "budget": budget,
        "step": step,
        "seeds": seeds,
        "epochs": epochs,
        "time_budget_s": time_budget_s,
        "full_data_f1": round(full_f1, 4),
        "full_data_unseen_recall": round(full_unseen, 4),
    }
    for name, found in runs.items():
        xs = [n for n, _, _ in found[0]]
        f1 = np.array([[f for _, f, _ in r] for r in found])
        unseen = np.array([[u for _, _, u in r] for r in found])
        mean = f1.mean(axis=0)
        mean_points = list(zip(xs, mean.tolist(), strict=True))
        summary[name] = {
            "labels": xs,
            "f1_mean": [round(v, 4) for v in mean],
            "f1_std": [round(v, 4) for v in f1.std(axis=0)],
            "unseen_recall_mean": [round(v, 4) for v in unseen.mean(axis=0)],
            "area": round(area(mean_points, budget), 4),
            "labels_to_90pct_full": next(
                (n for n, f in mean_points if f >= TARGET * full_f1), None
            ),
        }
    summary["seconds"] = round(time.monotonic() - started, 1)
    return write(summary, strategy, baseline, out, _plot)


def _plot(summary: dict[str, Any], strategy: str, baseline: str, path: Path) -> None:
    plt = pyplot()

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=100)
    for name in (strategy, baseline):
        draw_spread(left, summary[name], name, "f1")
        right.plot(
            summary[name]["labels"],
            summary[name]["unseen_recall_mean"],
            marker="o",
            markersize=3,
            label=name,
        )
    full = summary["full_data_f1"]
    left.axhline(
        full, color="gray", linestyle="--", linewidth=1, label=f"all {summary['pool']} ({full:.3f})"
    )
    left.axhline(TARGET * full, color="gray", linestyle=":", linewidth=1, label="90 % of that")
    left.set_ylabel("strict span micro-F1 on the test set")
    right.set_ylabel("recall on unseen test entities")
    for axes in (left, right):
        axes.set_xlabel("labelled sentences")
        axes.grid(alpha=0.3)
        axes.legend(loc="lower right", fontsize=8)
    figure.suptitle(
        f"{Path(summary['train']).parent.name} ({summary['kind']}): mean over {summary['seeds']} seeds"
    )
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def report(summary: dict[str, Any], strategy: str, baseline: str) -> str:
    a, b = summary[strategy], summary[baseline]
    lines = [
        f"{'labels':>8}{strategy:>26}{baseline:>26}",
        f"{'':>8}{'F1':>12}{'unseen rec.':>14}{'F1':>12}{'unseen rec.':>14}",
    ]
    for i, n in enumerate(a["labels"]):
        lines.append(
            f"{n:>8}{a['f1_mean'][i]:>7.3f} ±{a['f1_std'][i]:.3f}{a['unseen_recall_mean'][i]:>13.3f}"
            f"{b['f1_mean'][i]:>7.3f} ±{b['f1_std'][i]:.3f}{b['unseen_recall_mean'][i]:>13.3f}"
        )
    lines.append(
        f"area {a['area']:.3f} vs {b['area']:.3f}; 90 % of full ({summary['full_data_f1']:.3f}) "
        f"at {a['labels_to_90pct_full']} vs {b['labels_to_90pct_full']} labels"
    )
    return "\n".join(lines)


def final_line(summary: dict[str, Any], strategy: str, baseline: str) -> dict[str, Any]:
    keys = ("area", "labels_to_90pct_full", "unseen_recall_mean")
    return {
        "full_data_f1": summary["full_data_f1"],
        strategy: {k: summary[strategy][k] for k in keys},
        baseline: {k: summary[baseline][k] for k in keys},
    }
