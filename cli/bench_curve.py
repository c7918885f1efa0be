"""``alloop bench learning-curve``: active learning against a baseline, simulated (classification
or entities) or through the real loop (``--end-to-end``); the options, their checks, and the
figures printed. :mod:`cli.bench` registers it in the bench group."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import TrainerModelKind, fail, load_settings


def learning_curve(
    train: Annotated[
        list[Path],
        typer.Option(
            help="Labelled training pool (.jsonl, .json or .csv; ner: CoNLL or .jsonl). "
            "classification: repeat to pool several files (e.g. NLU++ folds)."
        ),
    ],
    test: Annotated[list[Path], typer.Option(help="Labelled test set, same format.")],
    task: Annotated[
        str, typer.Option(help="classification, or ner (entity extraction).")
    ] = "classification",
    multi_label: Annotated[
        bool,
        typer.Option(
            "--multi-label",
            help="classification: the documents carry label sets (--labels-column); a "
            "one-vs-rest head, selection by the label nearest 0.5, macro-F1 label by label.",
        ),
    ] = False,
    labels_column: Annotated[
        str, typer.Option(help="--multi-label: field that holds the gold label set.")
    ] = "labels",
    strategy: Annotated[
        str | None,
        typer.Option(
            help="breaking-ties, entropy or least-confidence (classification; the default is "
            "breaking-ties); entity-uncertainty (ner)."
        ),
    ] = None,
    baseline: Annotated[str, typer.Option(help="The strategy to beat.")] = "random",
    seeds: Annotated[int, typer.Option(help="Simulated runs per strategy.")] = 3,
    budget: Annotated[int, typer.Option(help="Labels per run.")] = 1000,
    step: Annotated[int, typer.Option(help="Labels per round.")] = 100,
    label_column: Annotated[str, typer.Option(help="Field that holds the gold label.")] = "label",
    label_map: Annotated[
        str | None, typer.Option(help="Rename raw labels, e.g. '0=Bearish,1=Bullish,2=Neutral'.")
    ] = None,
    epochs: Annotated[int, typer.Option(help="ner: training passes per round.")] = 5,
    time_budget: Annotated[
        float,
        typer.Option(
            help="ner: seconds of training per round at most (4x for the full-data model). "
            "Keep it above what --epochs needs, so that the machine's load does not change "
            "the result."
        ),
    ] = 900.0,
    json_out: Annotated[
        Path, typer.Option("--json", help="Where to write the JSON (the PNG goes beside it).")
    ] = Path("bench/results/learning-curve.json"),
    end_to_end: Annotated[
        bool,
        typer.Option(
            "--end-to-end",
            help="classification: run the curve through the real loop (broker, scorer, "
            "labeler, Argilla, oracle annotator, webhooks, trainer) instead of calling the "
            "code directly; minutes per step, so use few --seeds.",
        ),
    ] = False,
    window: Annotated[
        int, typer.Option(help="--end-to-end: documents streamed per step (the scorer's window).")
    ] = 1000,
    model_kind: TrainerModelKind = "setfit",
    gate_size: Annotated[
        int,
        typer.Option(
            help="--end-to-end: documents of --train kept out of the stream as the owner's "
            "evaluation file, the test set the trainer's gate reads (at most a quarter)."
        ),
    ] = 500,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="--end-to-end: read back the runs (strategy and seed) that an earlier "
            "sitting with the same options finished and saved beside --json, and run only "
            "the others.",
        ),
    ] = False,
) -> None:
    """Active learning against a baseline, with simulated annotators (gold labels).

    classification: each round selects --step documents with the same selection code as the
    scorer and trains the trainer's head-only model on all labels so far; macro-F1 on --test.
    The last line printed is a JSON object with the area under each curve, the labels each
    needs to reach 95 % of the full-data score, and the full-data score.

    ner: each round trains the entity extractor on all sentences labelled so far and selects
    the next --step with the scorer's entity selection (unseen forms, rare types, doubt);
    strict span F1 and unseen-entity recall on --test. The last line has the areas, the labels
    each needs to reach 90 % of the full-data F1, and unseen recall along the curves.

    --end-to-end (classification): each strategy runs in a private loop on a local broker and
    Argilla; --gate-size documents of --train are its evaluation file (the gate's test set);
    per step --window documents are streamed, the scorer selects --step of them, the oracle
    annotator answers them in Argilla and the trainer makes a version; every version is then
    scored on --test. Same table, picture and last line. Each finished run is saved in
    <--json without .json>-runs/; --resume reads those back, so seeds can be run in several
    sittings. See docs/benchmarks.md.

    --multi-label (classification): the documents carry label sets, as the NLU++ folds do
    (--labels-column intents); the head is one-vs-rest, selection ranks by the label nearest
    0.5, and macro-F1 is computed label by label.

    Both write a PNG and a JSON (mean and spread over --seeds runs).
    """
    load_settings()
    if end_to_end and task != "classification":
        fail("--end-to-end runs the classification curve only")
    if resume and not end_to_end:
        fail("--resume goes with --end-to-end (the simulated curves take minutes)")
    if multi_label and (end_to_end or task != "classification"):
        fail("--multi-label runs the simulated classification curve only")
    if (task == "ner" or end_to_end) and (len(train) > 1 or len(test) > 1):
        fail("give one --train and one --test file (several are pooled for classification only)")
    if task == "ner":
        from bench import ner_curve

        chosen = strategy or "entity-uncertainty"
        summary = ner_curve.run(
            train[0],
            test[0],
            strategy=chosen,
            baseline=baseline,
            seeds=seeds,
            budget=budget,
            step=step,
            epochs=epochs,
            time_budget_s=time_budget,
            full_time_budget_s=4 * time_budget,
            out=json_out.with_suffix(""),
        )
        typer.echo(ner_curve.report(summary, chosen, baseline))
        typer.echo(f"picture: {summary['png']}")
        typer.echo(json.dumps(ner_curve.final_line(summary, chosen, baseline)))
        return
    if task != "classification":
        fail(f"--task {task}: choose classification or ner")
    from bench import learning_curve
    from loop.readers import Columns, parse_label_map

    chosen = strategy or "breaking-ties"
    columns = Columns(
        label=label_column, labels=labels_column, label_names=parse_label_map(label_map)
    )
    out = json_out.with_suffix("")
    runner: Callable[..., dict[str, Any]] = partial(learning_curve.run, multi_label=multi_label)
    if end_to_end:
        from bench import learning_curve_e2e

        runner = partial(
            learning_curve_e2e.run,
            window=window,
            model_kind=model_kind,
            gate_size=gate_size,
            resume=resume,
        )
        if json_out == Path("bench/results/learning-curve.json"):
            out = Path("bench/results/learning-curve-e2e")
    summary = runner(
        train if len(train) > 1 else train[0],
        test if len(test) > 1 else test[0],
        columns=columns,
        strategy=chosen,
        baseline=baseline,
        seeds=seeds,
        budget=budget,
        step=step,
        out=out,
    )
    typer.echo(learning_curve.report(summary, chosen, baseline))
    typer.echo(f"picture: {summary['png']}")
    final = {
        "full_data_macro_f1": summary["full_data_macro_f1"],
        chosen: {k: summary[chosen][k] for k in ("area", "labels_to_95pct_full")},
        baseline: {k: summary[baseline][k] for k in ("area", "labels_to_95pct_full")},
    }
    if "simulation" in summary:  # --end-to-end: the same pool simulated, and what survived
        simulated = summary["simulation"]
        typer.echo(
            f"simulation area {simulated[chosen]['area']:.3f} vs "
            f"{simulated[baseline]['area']:.3f} on the same pool; share of its gain kept "
            f"through the loop: {summary['gain_kept']}"
        )
        final["simulation"] = {name: {"area": simulated[name]["area"]} for name in simulated}
        final["gain_kept"] = summary["gain_kept"]
    typer.echo(json.dumps(final))
