"""The learning curve through the real loop: broker, scorer, labeler, Argilla, the oracle
annotator, webhooks, trainer and registry, as a user runs them.

The simulation (:mod:`bench.learning_curve`) calls the selection and training code directly.
This mode shows that the loop itself learns: for each strategy and seed, a private loop
(its own topics, Argilla dataset and home) is started. ``gate_size`` documents of the pool
(the same for every run) are the owner's evaluation file, the frozen test set the trainer's
gate reads, never streamed; the stream's evaluation sample is off, so every answer trains.
Per step

1. the next ``window`` documents of the rest of the pool (shuffled by the seed, gold labels
   removed) are streamed to the raw topic;
2. the scorer tags them and runs a selection round with the strategy over its window (the
   unpicked documents of earlier steps stay in it, up to ``scorer_window``), ranked by the
   newest version the trainer made (before any, representatives on the packaged encoder's
   embeddings); ``step`` candidates go to the labeler and Argilla;
3. the oracle answers them in Argilla; the webhooks bring the answers to the labels topic;
4. the trainer trains a new version in a fresh process on all answers so far, gates it on
   the evaluation file and promotes it or not.

Every version a run made is then scored on the benchmark's test file: the curve puts its
macro-F1 against the answers given when it was trained; the served curve holds the version
promoted at that point. The full-data score trains the same model kind on the whole pool.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bench import live
from bench.learning_curve import read_task, simulate, statistics, write
from loop.classification.base import Classifier, ClassifierConfig, ClassifierFactory
from loop.classification.evaluation import Prediction, evaluate
from loop.messages import Document
from loop.readers import Columns


@dataclass
class Point:
    """One step of one run: the version trained after ``labels`` answers."""

    labels: int
    """Answers people (the oracle) had given."""
    in_store: int
    """Labels the version's round trained on."""
    version: str | None
    promoted: bool
    served: str | None
    seconds: float


SCORER_WINDOW = 3000
"""Documents a selection round may choose from: the new ones and those left from earlier steps
(the simulation ranks 3,000 per step too)."""


def gate_split(pool: Sequence[Document], size: int) -> tuple[list[Document], list[Document]]:
    """(the pool to stream, the evaluation file): ``size`` documents drawn the same way for
    every strategy and seed, never streamed."""
    size = min(size, len(pool) // 4)
    chosen = set(np.random.default_rng(20261201).permutation(len(pool))[:size].tolist())
    return (
        [d for i, d in enumerate(pool) if i not in chosen],
        [d for i, d in enumerate(pool) if i in chosen],
    )


def macro_f1(classifier: Classifier, test: Sequence[Document], names: Sequence[str]) -> float:
    probs = classifier.predict_proba([d.text for d in test])
    said = [classifier.labels[i] for i in probs.argmax(axis=1)]
    rows = [
        Prediction(id=d.id, gold=str(d.label), predicted=p) for d, p in zip(test, said, strict=True)
    ]
    return evaluate(rows, names).macro_f1


def _rounds(log: Path, marker: str) -> list[str]:
    """The payload after ``marker`` on every line of a worker's log that has it."""
    if not log.is_file():
        return []
    return [line.split(marker, 1)[1] for line in log.read_text().splitlines() if marker in line]


def _round_with(log: Path, after: int, answers: int) -> tuple[int, dict[str, Any]] | None:
    """The first round logged after the first ``after`` that trained on all ``answers``
    (rounds the trainer started on its own, e.g. on the evaluation file alone, are passed
    over), with the count of round lines read up to it."""
    rounds = _rounds(log, "round: {")
    for i in range(after, len(rounds)):
        result: dict[str, Any] = json.loads("{" + rounds[i])
        if int(result.get("train_size", 0)) >= answers:
            return i + 1, result
    return None


def _more_than(log: Path, marker: str, n: int) -> Callable[[], bool]:
    return lambda: len(_rounds(log, marker)) > n


def one_run(
    stack: live.Stack,
    pool: Sequence[Document],
    names: Sequence[str],
    *,
    strategy: str,
    seed: int,
    budget: int,
    step: int,
    window: int,
    model_kind: str,
    gate: Sequence[Document] = (),
    scorer_window: int = SCORER_WINDOW,
    inspect: Callable[[live.Loop], None] | None = None,
) -> tuple[list[Point], Path]:
    """Drive one private loop to ``budget`` labels; the points and the registry folder.
    ``gate`` is the evaluation file the trainer's gate reads; ``inspect`` sees the loop after
    its last step, while its processes still run."""
    from kafka import KafkaProducer

    from connectors.argilla.oracle import Gold, Oracle
    from connectors.ingest import publish
    from connectors.kafka import ensure_topics
    from loop.labels import LabelStore
    from loop.training.seed import seed_labels
    from loop.training.split import TEST_FILE

    steps = -(-budget // step)
    order = np.random.default_rng(seed).permutation(len(pool))
    window = min(window, len(pool) // steps)
    loop = live.Loop.create(
        stack,
        f"e2e-{strategy}-{seed}",
        {
            "ALLOOP_ARGILLA__LABELS": ",".join(names),
            "ALLOOP_ARGILLA__BUDGET": str(2 * step),
            "ALLOOP_SCORER__STRATEGY": strategy,
            "ALLOOP_SCORER__WINDOW_SIZE": str(max(window, scorer_window)),
            "ALLOOP_SCORER__ROUND_SIZE": str(window),
            "ALLOOP_SCORER__EVALUATION_FRACTION": "0",
            "ALLOOP_TRAINER__MIN_TEST_SIZE": str(min(30, max(len(gate), 1))),
            "ALLOOP_SCORER__CANDIDATES_PER_ROUND": str(step),
            "ALLOOP_TRAINER__MIN_NEW_LABELS": str(step),
            "ALLOOP_TRAINER__MAX_WAIT_S": "120",
            "ALLOOP_TRAINER__FULL_FINETUNE_EVERY": "0",
            "ALLOOP_TRAINER__MODEL_KIND": model_kind,
        },
    )
    ensure_topics(stack.broker, [loop.topic("raw"), loop.topic("candidates")], 3)
    if gate:
        seed_labels(
            gate, LabelStore(loop.home / "labels" / "labels.db"), "classification", TEST_FILE
        )
    loop.start("api", ["api"])
    loop.start("scorer", ["worker", "scorer"])
    loop.start("labeler", ["worker", "labeler", "--no-vectors"])
    loop.start("trainer", ["worker", "trainer"])
    oracle = Oracle(
        stack.argilla.url,
        stack.argilla.credentials.annotator_api_key,
        Gold(pool),
        prefix=loop.prefix,
    )
    producer = KafkaProducer(bootstrap_servers=stack.broker, acks="all")
    points: list[Point] = []
    answered = 0
    try:
        loop.wait_assigned("scorer", "labeler", "trainer")
        served: str | None = None
        consumed = 0  # the trainer's round lines read so far
        for k in range(steps):
            started = time.monotonic()
            chunk = [pool[i] for i in order[k * window : (k + 1) * window]]
            publish(
                (d.model_copy(update={"label": None}) for d in chunk),
                producer,
                loop.topic("raw"),
                progress=False,
            )
            live.wait_for(
                _more_than(loop.log("scorer"), "selection round: ", k),
                600,
                f"selection round {k + 1}",
                every=1,
            )
            picked = int(_rounds(loop.log("scorer"), "selection round: ")[k].split()[0])
            wanted = min(picked, budget - answered)
            given = 0
            deadline = time.monotonic() + 300
            while given < wanted and time.monotonic() < deadline:
                given += oracle.run(wanted - given).submitted
                if given < wanted:
                    time.sleep(1)
            answered += given
            live.wait_for(
                partial(_round_with, loop.log("trainer"), consumed, answered),
                900,
                f"the trainer's round {k + 1}",
                every=1,
            )
            consumed, result = _round_with(loop.log("trainer"), consumed, answered) or (0, {})
            if result.get("promoted"):
                served = result["version"]
                live.wait_for(
                    _more_than(loop.log("scorer"), f"now serving model {served} ", 0),
                    120,
                    f"the scorer to serve {served}",
                )
            point = Point(
                answered,
                int(result.get("train_size", 0)),
                result.get("version"),
                bool(result.get("promoted")),
                served,
                round(time.monotonic() - started, 1),
            )
            points.append(point)
            print(
                f"{strategy:16} seed {seed} step {k + 1}/{steps}: {answered} labels, "
                f"{point.version or 'no version (' + str(result.get('skipped')) + ')'}"
                f"{' promoted' if point.promoted else ''} (its round saw {point.in_store} labels), "
                f"{point.seconds:.0f} s",
                file=sys.stderr,
                flush=True,
            )
        if inspect is not None:
            inspect(loop)
    finally:
        producer.close(timeout=10)
        oracle.close()
        loop.stop()
    return points, loop.home / "registry"


def run(
    train: Path,
    test: Path,
    *,
    columns: Columns = Columns(),
    strategy: str = "breaking-ties",
    baseline: str = "random",
    seeds: int = 1,
    budget: int = 500,
    step: int = 100,
    window: int = 1000,
    gate_size: int = 500,
    model_kind: str = "setfit",
    out: Path = Path("bench/results/learning-curve-e2e"),
    stack: live.Stack | None = None,
    simulation: bool = True,
    resume: bool = False,
) -> dict[str, Any]:
    """Both curves through the loop; on ``stack`` if given, else on a broker and a local
    Argilla started for the run. Each finished run is saved beside ``out`` (in
    ``<out>-runs/``); with ``resume`` a run saved with the same settings is read back instead
    of run again, so that the seeds of a long benchmark can be run in several sittings."""
    from loop.classification.factories import factory_for

    everything, testset, names = read_task(train, test, columns)
    pool, gate = gate_split(everything, gate_size)
    started = time.monotonic()
    runs: dict[str, list[dict[str, Any]]] = {strategy: [], baseline: []}
    summary: dict[str, Any] = {
        "mode": "end-to-end",
        "train": str(train),
        "test": str(test),
        "labels": len(names),
        "pool": len(pool),
        "gate_size": len(gate),
        "test_size": len(testset),
        "budget": budget,
        "step": step,
        "window": window,
        "scorer_window": SCORER_WINDOW,
        "seeds": seeds,
        "model_kind": model_kind,
    }
    same_settings = {k: summary[k] for k in summary if k not in ("mode", "seeds", "labels")}
    with nullcontext(stack) if stack is not None else live.stack("alloop-e2e-") as running:
        # Versions that share a body share the test set's embeddings (the trainer's cache).
        factory = factory_for(model_kind, running.scratch / "embeddings")
        for seed in range(seeds):
            for name in (strategy, baseline):
                saved = out.parent / f"{out.name}-runs" / f"{name}-seed{seed}.json"
                key = {**same_settings, "strategy": name, "seed": seed}
                if resume and (earlier := _saved_run(saved, key)) is not None:
                    print(f"{name:16} seed {seed}: read back from {saved}", file=sys.stderr)
                    runs[name].append(earlier)
                    continue
                points, folder = one_run(
                    running,
                    pool,
                    names,
                    strategy=name,
                    seed=seed,
                    budget=budget,
                    step=step,
                    window=window,
                    model_kind=model_kind,
                    gate=gate,
                )
                runs[name].append(_score_run(points, folder, factory, testset, names))
                _save_run(saved, key, runs[name][-1])
        summary["loop_seconds"] = round(time.monotonic() - started, 1)
        full_model = factory.train(
            [d.text for d in pool], [str(d.label) for d in pool], ClassifierConfig(freeze_body=True)
        )
        full = macro_f1(full_model, testset, names)
        summary["full_data_macro_f1"] = round(full, 4)
        print(f"full data: {len(pool)} labels, macro-F1 {full:.3f}", file=sys.stderr)
        for name, results in runs.items():
            labels = [round(float(n)) for n in _column(results, "labels").mean(axis=0)]
            summary[name] = {
                **statistics(labels, _column(results, "macro_f1").tolist(), budget, full),
                "served_macro_f1_mean": [
                    round(float(v), 4) for v in _column(results, "served_macro_f1").mean(axis=0)
                ],
                "runs": results,
            }
    if simulation:
        # The simulation on the same pool (the evaluation file left out), test set and seeds:
        # how much of its gain survives the loop.
        sim_full, sim_curves = simulate(
            pool, testset, names, False, (strategy, baseline), seeds, budget, step
        )
        summary["simulation"] = {
            name: statistics(
                [n for n, _ in runs[0]], [[f for _, f in r] for r in runs], budget, sim_full
            )
            for name, runs in sim_curves.items()
        }
        summary["gain_kept"] = gain_kept(summary, strategy, baseline)
    summary["seconds"] = round(time.monotonic() - started, 1)
    return write(summary, strategy, baseline, out)


def _score_run(
    points: Sequence[Point],
    registry_folder: Path,
    factory: ClassifierFactory,
    testset: Sequence[Document],
    names: Sequence[str],
) -> dict[str, Any]:
    """One run as the summary keeps it: each point with the macro-F1 on the test file of the
    version trained at that step and of the version served then."""
    from loop.classification.factories import load_version
    from loop.registry import ModelRegistry

    registry = ModelRegistry(registry_folder)
    f1 = {
        v: round(macro_f1(load_version(registry, v, factory), testset, names), 4)
        for v in registry.versions()
    }
    return {
        "home": str(registry_folder.parent),
        "points": [
            {
                **p.__dict__,
                "macro_f1": f1.get(p.version or "", 0.0),
                "served_macro_f1": f1.get(p.served or "", 0.0),
            }
            for p in points
        ],
    }


def _column(runs: Sequence[dict[str, Any]], key: str) -> np.ndarray:
    """One value of every point of every run: a row per run."""
    return np.array([[p[key] for p in r["points"]] for r in runs])


def _save_run(path: Path, key: dict[str, Any], scored: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".partial").write_text(json.dumps({"settings": key, "run": scored}, indent=2))
    path.with_suffix(".partial").replace(path)


def _saved_run(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """The run saved at ``path`` if it was made with the settings ``key``."""
    saved: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    return saved["run"] if saved.get("settings") == key else None


def gain_kept(summary: dict[str, Any], strategy: str, baseline: str) -> float | None:
    """The share of the simulation's area gain (strategy over baseline) that the loop kept;
    None when the simulation shows no gain to keep."""
    loop_gain = summary[strategy]["area"] - summary[baseline]["area"]
    sim = summary["simulation"]
    sim_gain = sim[strategy]["area"] - sim[baseline]["area"]
    return round(loop_gain / sim_gain, 3) if sim_gain > 0 else None
