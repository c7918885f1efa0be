"""Does active learning beat random sampling? Learning curves with simulated annotators.

For each seed and each of the two strategies (the one under test and the baseline), start with
no labels, and repeat: select ``step`` documents from the unlabelled training pool with
:func:`loop.classification.selection.select`, "label" them with their gold labels, train, and score macro-F1 on
the test set; until ``budget`` labels. Training is the head-only round of the trainer
(:func:`loop.classification.setfit.fit_head`: SetFit's logistic-regression head on the frozen
all-MiniLM-L6-v2 body), and the pool and test set are embedded once, so a curve takes seconds
per step on a CPU. The full-data score trains the same way on every training label.

With ``multi_label`` the documents carry label sets: the head is one-vs-rest (a yes/no
logistic regression per label), selection ranks by the label nearest 0.5, and macro-F1 is over
labels scored label by label (:func:`loop.classification.evaluation.evaluate_sets`).

Prints a table, writes a PNG and a JSON, and prints as its last line a JSON object with the
area under each curve (mean over seeds, labels scaled to [0, 1]), the labels each needs to
reach 95 % of the full-data score, and the full-data score.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from loop.classification.base import Target, applying, count_labels, multi_hot
from loop.classification.evaluation import Prediction, evaluate
from loop.classification.selection import select
from loop.evaluation.curves import pyplot
from loop.messages import Document
from loop.readers import Columns, Rejected, read_documents
from loop.selection.base import Scored, SelectionConfig

WINDOW = 3000
"""Unlabelled documents ranked per step (a random subsample of the pool, as the scorer's
bounded window is a slice of the stream)."""


def read_labelled(
    paths: Path | Sequence[Path], columns: Columns, multi_label: bool = False
) -> list[Document]:
    """The labelled documents of one or more files (label sets with ``multi_label``)."""
    labelled: list[Document] = []
    for path in [paths] if isinstance(paths, Path) else paths:
        documents = [d for d in read_documents(path, columns) if not isinstance(d, Rejected)]
        labelled += [d for d in documents if (d.labels if multi_label else d.label) is not None]
    if not labelled:
        which = "--labels-column" if multi_label else "--label-column"
        raise SystemExit(f"{paths}: no labelled documents (wrong {which}?)")
    return labelled


def target(doc: Document, multi_label: bool) -> Target:
    """What a document is labelled with: its label, or its label set."""
    return tuple(doc.labels or ()) if multi_label else str(doc.label)


@dataclass
class Model:
    """SetFit on the packaged MiniLM, head refit per step on fixed embeddings."""

    setfit: Any
    names: list[str]
    multi_label: bool = False

    @classmethod
    def load(cls, names: list[str], multi_label: bool = False) -> Model:
        from setfit import SetFitModel

        from loop.classification.base import ClassifierConfig
        from loop.classification.setfit import logistic_head
        from loop.embeddings.backbone import minilm_path, offline

        offline()
        model = SetFitModel.from_pretrained(str(minilm_path()), labels=names)
        # the trainer's head
        model.model_head = logistic_head(ClassifierConfig(multi_label=multi_label))
        return cls(model, names, multi_label)

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        from tqdm import tqdm

        from loop.classification.setfit import encode

        chunks = []
        for start in tqdm(
            range(0, len(texts), 512), desc="embedding", file=sys.stderr, unit=" batches"
        ):
            chunks.append(encode(self.setfit, texts[start : start + 512]))
        return np.concatenate(chunks)

    def fit_predict(
        self,
        x: npt.NDArray[np.float32],
        y: Sequence[Target],
        targets: Sequence[npt.NDArray[np.float32]],
    ) -> list[npt.NDArray[np.float64]]:
        """Train on (x, y); class probabilities over ``names`` for each array in ``targets``
        (multi-label: one independent probability per label)."""
        from loop.classification.setfit import fit_head

        if self.multi_label:
            fit_head(self.setfit, x, multi_hot([tuple(t) for t in y], self.names))
            head = self.setfit.model_head
            return [np.asarray(head.predict_proba(t), dtype=np.float64) for t in targets]
        index = {n: i for i, n in enumerate(self.names)}
        fit_head(self.setfit, x, [index[str(label)] for label in y])
        head = self.setfit.model_head
        outputs = []
        for t in targets:
            raw = head.predict_proba(t)
            full = np.zeros((len(t), len(self.names)))
            full[:, head.classes_] = raw  # classes never seen get probability 0
            outputs.append(full)
        return outputs


def macro_f1(probs: npt.NDArray[np.float64], gold: Sequence[Target], names: Sequence[str]) -> float:
    """Macro-F1 of the predictions; label sets (multi-label) when the gold answers are sets."""
    multi_label = bool(gold) and not isinstance(gold[0], str)
    rows = [
        Prediction(
            id=str(i),
            gold=sorted(g) if multi_label else str(g),
            predicted=sorted(applying(names, row)) if multi_label else names[int(row.argmax())],
        )
        for i, (g, row) in enumerate(zip(gold, probs, strict=True))
    ]
    return evaluate(rows, names, multi_label=multi_label).macro_f1


def curve(
    model: Model,
    pool_x: npt.NDArray[np.float32],
    pool: Sequence[Document],
    test_x: npt.NDArray[np.float32],
    test_gold: Sequence[Target],
    config: SelectionConfig,
    budget: int,
    step: int,
    seed: int,
) -> list[tuple[int, float]]:
    """(labels, macro-F1) after every step of one simulated labeling run."""
    rng = np.random.default_rng(seed)
    labelled: list[int] = []
    points: list[tuple[int, float]] = []
    probs: npt.NDArray[np.float64] | None = None
    names = model.names
    multi = model.multi_label
    while len(labelled) < budget:
        unlabelled = np.setdiff1d(np.arange(len(pool)), labelled)
        window_ids = rng.choice(unlabelled, size=min(WINDOW, len(unlabelled)), replace=False)
        window = [
            Scored(
                id=str(i),
                text=pool[i].text,
                probabilities=dict(zip(names, probs[i], strict=True)) if probs is not None else {},
                embedding=pool_x[i],
            )
            for i in window_ids
        ]
        counts = count_labels([target(pool[i], multi) for i in labelled])
        batch = SelectionConfig(
            **{**config.__dict__, "batch_size": min(step, budget - len(labelled))}
        )
        picks = select(
            window, batch, counts, names, seed=int(rng.integers(1 << 31)), multi_label=multi
        )
        labelled += [int(p.id) for p in picks]
        y = [target(pool[i], multi) for i in labelled]
        if len(count_labels(y)) < 2:
            points.append((len(labelled), 0.0))
            continue
        probs, test_probs = model.fit_predict(pool_x[labelled], y, [pool_x, test_x])
        points.append((len(labelled), macro_f1(test_probs, test_gold, names)))
    return points


def area(points: Sequence[tuple[int, float]], budget: int) -> float:
    """Area under macro-F1 against labels / budget (0 to 1), starting at (0, 0)."""
    xs = [0.0] + [n / budget for n, _ in points]
    ys = [0.0] + [f for _, f in points]
    return float(np.trapezoid(ys, xs))


def labels_to_reach(points: Sequence[tuple[int, float]], target: float) -> int | None:
    return next((n for n, f in points if f >= target), None)


def run(
    train: Path | Sequence[Path],
    test: Path | Sequence[Path],
    *,
    columns: Columns = Columns(),
    multi_label: bool = False,
    strategy: str = "breaking-ties",
    baseline: str = "random",
    seeds: int = 3,
    budget: int = 1000,
    step: int = 100,
    out: Path = Path("bench/results/learning-curve"),
) -> dict[str, Any]:
    pool, testset, names = read_task(train, test, columns, multi_label)
    started = time.monotonic()
    full, curves = simulate(
        pool, testset, names, multi_label, (strategy, baseline), seeds, budget, step
    )
    summary: dict[str, Any] = {
        "train": str(train if isinstance(train, Path) else train[0]),
        "test": str(test if isinstance(test, Path) else test[0]),
        "multi_label": multi_label,
        "labels": len(names),
        "pool": len(pool),
        "test_size": len(testset),
        "budget": budget,
        "step": step,
        "seeds": seeds,
        "full_data_macro_f1": round(full, 4),
        "seconds": round(time.monotonic() - started, 1),
    }
    for name, runs in curves.items():
        matrix = [[f for _, f in r] for r in runs]
        summary[name] = statistics([n for n, _ in runs[0]], matrix, budget, full)
    return write(summary, strategy, baseline, out)


def simulate(
    pool: Sequence[Document],
    testset: Sequence[Document],
    names: list[str],
    multi_label: bool,
    strategies: Sequence[str],
    seeds: int,
    budget: int,
    step: int,
) -> tuple[float, dict[str, list[list[tuple[int, float]]]]]:
    """The full-data score and, per strategy, one simulated curve per seed."""
    model = Model.load(names, multi_label)
    pool_x = model.embed([d.text for d in pool])
    test_x = model.embed([d.text for d in testset])
    test_gold = [target(d, multi_label) for d in testset]
    (full_test,) = model.fit_predict(pool_x, [target(d, multi_label) for d in pool], [test_x])
    full = macro_f1(full_test, test_gold, names)
    print(f"full data: {len(pool)} labels, macro-F1 {full:.3f}", file=sys.stderr)
    curves: dict[str, list[list[tuple[int, float]]]] = {}
    for name in strategies:
        config = SelectionConfig(strategy=name)
        curves[name] = []
        for seed in range(seeds):
            points = curve(model, pool_x, pool, test_x, test_gold, config, budget, step, seed)
            curves[name].append(points)
            print(
                f"{name:16} seed {seed}: " + " ".join(f"{n}:{f:.3f}" for n, f in points),
                file=sys.stderr,
            )
    return full, curves


def read_task(
    train: Path | Sequence[Path],
    test: Path | Sequence[Path],
    columns: Columns,
    multi_label: bool = False,
) -> tuple[list[Document], list[Document], list[str]]:
    """The labelled pool, the labelled test set, and every label either names."""
    pool = read_labelled(train, columns, multi_label)
    testset = read_labelled(test, columns, multi_label)
    names = count_labels([target(doc, multi_label) for doc in [*pool, *testset]])
    return pool, testset, sorted(names)


def statistics(
    labels: Sequence[int], runs: Sequence[Sequence[float]], budget: int, full: float
) -> dict[str, Any]:
    """One strategy's curve over its runs (one row of macro-F1 per seed): mean, spread, area
    and the labels the mean needs to reach 95 % of the full-data score."""
    matrix = np.array(runs)
    mean = matrix.mean(axis=0)
    mean_points = list(zip(labels, mean.tolist(), strict=True))
    return {
        "labels": list(labels),
        "macro_f1_mean": [round(v, 4) for v in mean],
        "macro_f1_std": [round(v, 4) for v in matrix.std(axis=0)],
        "area": round(area(mean_points, budget), 4),
        "labels_to_95pct_full": labels_to_reach(mean_points, 0.95 * full),
    }


Plot = Callable[[dict[str, Any], str, str, Path], None]
"""Draws a summary's curves (strategy and baseline) into a PNG file."""


def write(
    summary: dict[str, Any], strategy: str, baseline: str, out: Path, draw: Plot | None = None
) -> dict[str, Any]:
    """Write the summary as ``out``.json and its picture (``draw``, else :func:`plot`) as
    ``out``.png; the summary, with the picture's path."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2))
    (draw or plot)(summary, strategy, baseline, out.with_suffix(".png"))
    summary["png"] = str(out.with_suffix(".png"))
    return summary


def draw_spread(axes: Any, curve: dict[str, Any], name: str, metric: str) -> None:
    """One strategy's curve on ``axes``: the mean of ``metric`` over the seeds against the
    labels (its area in the legend), and one standard deviation either side, shaded."""
    xs = curve["labels"]
    mean, std = np.array(curve[f"{metric}_mean"]), np.array(curve[f"{metric}_std"])
    axes.plot(xs, mean, marker="o", markersize=3, label=f"{name} (area {curve['area']:.3f})")
    axes.fill_between(xs, mean - std, mean + std, alpha=0.2)


def plot(summary: dict[str, Any], strategy: str, baseline: str, path: Path) -> None:
    """Both curves (mean and spread over seeds) against the full-data score."""
    plt = pyplot()

    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=100)
    for name in (strategy, baseline):
        draw_spread(axes, summary[name], name, "macro_f1")
    full = summary["full_data_macro_f1"]
    axes.axhline(
        full,
        color="gray",
        linestyle="--",
        linewidth=1,
        label=f"all {summary['pool']} labels ({full:.3f})",
    )
    axes.axhline(0.95 * full, color="gray", linestyle=":", linewidth=1, label="95 % of that")
    axes.set_xlabel("labels")
    axes.set_ylabel("macro-F1 on the test set")
    mode = " (through the loop)" if summary.get("mode") == "end-to-end" else ""
    axes.set_title(
        f"{Path(summary['train']).parent.name}{mode}: mean and spread over {summary['seeds']} "
        "seed(s)",
        fontsize=10,
    )
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def report(summary: dict[str, Any], strategy: str, baseline: str) -> str:
    lines = [f"{'labels':>8}" + f"{strategy:>18}" + f"{baseline:>18}"]
    for i, n in enumerate(summary[strategy]["labels"]):
        a = summary[strategy]
        b = summary[baseline]
        lines.append(
            f"{n:>8}{a['macro_f1_mean'][i]:>12.3f} ±{a['macro_f1_std'][i]:.3f}"
            f"{b['macro_f1_mean'][i]:>12.3f} ±{b['macro_f1_std'][i]:.3f}"
        )
    lines.append(
        f"area       {summary[strategy]['area']:.3f} vs {summary[baseline]['area']:.3f}; "
        f"95 % of full ({summary['full_data_macro_f1']:.3f}) at "
        f"{summary[strategy]['labels_to_95pct_full']} vs {summary[baseline]['labels_to_95pct_full']} labels"
    )
    return "\n".join(lines)
