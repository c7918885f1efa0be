"""``alloop bench``: the benchmarks; each command only parses options and calls :mod:`bench`."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import fail, load_settings

logger = logging.getLogger("alloop")

bench_app = typer.Typer(
    help="Benchmarks that print their figures (see docs/benchmarks.md).", no_args_is_help=True
)


@bench_app.command("learning-curve")
def bench_learning_curve(
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
    model_kind: Annotated[
        str, typer.Option(help="--end-to-end: the trainer's model (setfit; keywords for tests).")
    ] = "setfit",
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


@bench_app.command(
    "ner-compare",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def bench_ner_compare(ctx: typer.Context) -> None:
    """Entity extractors compared on the same data and time budget (WNUT-17 by default).

    Passes its options to bench/ner_compare.py: --train, --test, --candidates, --train-size,
    --time-budget, --batch-size, --seed, --json (`alloop bench ner-compare --help` lists them).
    See docs/entities.md.
    """
    from bench import ner_compare

    load_settings()
    ner_compare.main(list(ctx.args))


@bench_app.command(
    "ner-speed",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def bench_ner_speed(ctx: typer.Context) -> None:
    """Tagging speed of the MiniLM tagger: every way of running it on one saved model.

    Passes its options to bench/ner_speed.py: --model (trained and saved first when absent),
    --train, --test, --train-size, --rounds, --batch-size, --json (`alloop bench ner-speed
    --help` lists them). See docs/entities.md.
    """
    from bench import ner_speed

    load_settings()
    ner_speed.main(list(ctx.args))


@bench_app.command("label-latency")
def bench_label_latency(
    sizes: Annotated[str, typer.Option(help="Comma-separated label counts.")] = "200,1000",
) -> None:
    """Seconds from the oracle's last answer until /v1/classify serves a version trained on it.

    Runs the real path on a private stack: broker, Argilla, labeler, API webhooks, trainer
    (one head-only round of all N labels), registry, API reload. The last line printed is a
    JSON object.
    """
    from bench import label_latency

    load_settings()
    result = label_latency.run([int(n) for n in sizes.split(",") if n.strip()])
    for n, r in result["results"].items():
        typer.echo(
            f"{n:>6} labels: served {r['seconds']} s after the last answer (round {r['round_seconds']} s)"
        )
    typer.echo(json.dumps(result))


@bench_app.command("argilla")
def bench_argilla(
    sizes: Annotated[
        str, typer.Option(help="Comma-separated dataset sizes (records).")
    ] = "1000,10000",
    repeats: Annotated[int, typer.Option(help="Requests timed per figure (median).")] = 7,
) -> None:
    """Milliseconds per Argilla request on the SQL search engine, as a dataset grows.

    Starts a private local Argilla, fills one dataset per size with labeler-like records and
    times a page, a text query, a filter, sorting, the annotator's queue, progress and "find
    similar" through Argilla's HTTP API. The last line printed is a JSON object.
    """
    from bench import argilla_engine

    load_settings()
    result = argilla_engine.run([int(s) for s in sizes.split(",") if s.strip()], repeats)
    typer.echo(argilla_engine.report(result))
    typer.echo(json.dumps(result))


@bench_app.command("throughput")
def bench_throughput(
    documents: Annotated[int, typer.Option(help="Documents to stream.")] = 20_000,
    batch_size: Annotated[
        int, typer.Option(help="Batch size for both the raw model and the scorer.")
    ] = 64,
    warmup: Annotated[
        float, typer.Option(help="Fraction of documents counted as warm-up for memory.")
    ] = 0.1,
    tasks: Annotated[
        str,
        typer.Option(
            help="classification: the pipeline against the raw model (real broker). "
            "classification,entities: the scorer with both tasks, fast path against float32, "
            "in this process (docs/benchmarks.md)."
        ),
    ] = "classification",
) -> None:
    """Documents per second through the whole pipeline (real broker, real scorer process)
    against the raw model on the same documents, and the scorer's memory over the stream;
    with --tasks classification,entities, the scorer's fast path against its float32 path.

    Starts its own broker unless ALLOOP_KAFKA__BOOTSTRAP_SERVERS is set. The last line printed
    is a JSON object with every figure.
    """
    from bench import throughput, throughput_tasks
    from workers.scorer import Scorer

    settings = load_settings()
    if tasks != "classification":
        both = throughput_tasks.run(
            settings, Scorer, documents, batch_size, warmup, tasks.split(",")
        )
        typer.echo(throughput_tasks.report(both))
        return
    result = throughput.run(
        documents, batch_size, warmup, servers=settings.kafka.bootstrap_servers or None
    )
    typer.echo(throughput.report(result))


@bench_app.command("api")
def bench_api(
    requests: Annotated[int, typer.Option(help="Requests of one document each.")] = 1000,
) -> None:
    """POST /v1/predict latency for one document against the raw model calls it makes, p50
    and p99, in one process (docs/benchmarks.md). Serves the configured registry's promoted
    versions, or a seed model trained in a scratch folder when none is promoted. The last
    line printed is a JSON object with every figure.
    """
    from api.app import create_app
    from bench import api_latency

    typer.echo(api_latency.report(api_latency.run(load_settings(), create_app, requests)))


@bench_app.command("chaos")
def bench_chaos(
    documents: Annotated[int, typer.Option(help="Tweets to stream to the raw topic.")] = 10_000,
    kills: Annotated[
        int, typer.Option(help="SIGKILLs of each process (scorer, labeler, trainer, API).")
    ] = 3,
    seed: Annotated[int, typer.Option(help="Seeds the kill moments and the tweets drawn.")] = 0,
    rate: Annotated[
        float, typer.Option(help="Documents per second streamed; the kills fall in that time.")
    ] = 15.0,
    model_kind: Annotated[
        str, typer.Option(help="The trainer's model (setfit; keywords for a quick run).")
    ] = "setfit",
    settle_timeout: Annotated[
        float, typer.Option(help="Seconds the loop may take to catch up after the stream.")
    ] = 900.0,
    broker_restarts: Annotated[
        int,
        typer.Option(help="Times the broker (on disk) is stopped and started again mid-stream."),
    ] = 0,
    broker_down_s: Annotated[
        float, typer.Option(help="Seconds the broker stays down at each restart.")
    ] = 10.0,
    argilla_stops: Annotated[
        int, typer.Option(help="Times Argilla is frozen (SIGSTOP), then its Redis SIGKILLed.")
    ] = 0,
    argilla_stop_s: Annotated[
        float, typer.Option(help="Seconds Argilla stays frozen at each stop.")
    ] = 60.0,
    replays: Annotated[
        int,
        typer.Option(help="Scorers SIGKILLed between their acknowledged outputs and commit."),
    ] = 0,
) -> None:
    """SIGKILL the loop's processes at random moments while tweets stream through it, then
    check that nothing was lost or duplicated.

    Starts a private broker and local Argilla, trains a SetFit seed version for the scorer,
    runs the scorer, labeler, trainer and API as real processes, and lets the oracle annotator
    answer every Argilla record. While --documents stream at --rate, each process is killed
    --kills times (moments drawn with --seed) and restarted at once. Then it checks: every
    document on the tagged topic (copies byte-identical), one Argilla record per candidate, one
    label per answer in the label store, every version loadable, no process exiting on its
    own. With --broker-restarts the broker runs on disk and is stopped and started again on its
    address; with --argilla-stops Argilla is frozen for --argilla-stop-s, then its Redis is
    killed and started again; with --replays the scorer is restarted with its commits held
    (ALLOOP_KAFKA__COMMIT_DELAY_S) and killed once a batch's outputs are out, so that the batch
    is replayed. The last line printed is a JSON object with the figures; the exit code is 1
    when an invariant fails. See docs/reliability.md#fault-injection.
    """
    from bench import chaos

    settings = load_settings()
    figures = chaos.run(
        documents,
        seed=seed,
        rate=rate,
        model_kind=model_kind,
        settle_timeout_s=settle_timeout,
        scenarios=chaos.scenarios(
            kills,
            broker_restarts=broker_restarts,
            broker_down_s=broker_down_s,
            argilla_stops=argilla_stops,
            argilla_stop_s=argilla_stop_s,
            replays=replays,
        ),
        argilla_venv=settings.argilla.venv,
    )
    typer.echo(chaos.report(figures))
    typer.echo(json.dumps(figures))
    if figures["failures"]:
        raise typer.Exit(1)


@bench_app.command("drift")
def bench_drift(
    seeds: Annotated[int, typer.Option(help="Runs, each with its own shuffles.")] = 3,
    window: Annotated[
        int, typer.Option(help="Documents per window.", envvar="ALLOOP_DRIFT__WINDOW_SIZE")
    ] = 200,
    reference_windows: Annotated[
        int,
        typer.Option(
            help="Windows that become the reference.", envvar="ALLOOP_DRIFT__REFERENCE_WINDOWS"
        ),
    ] = 2,
    windows: Annotated[int, typer.Option(help="Windows of the stream without drift.")] = 20,
    seed_size: Annotated[int, typer.Option(help="Labelled tweets the head is fitted on.")] = 1000,
    other: Annotated[
        Path | None,
        typer.Option(help="CSV (text,category) of the other source (default: banking77)."),
    ] = None,
) -> None:
    """False alarms and delays of the drift monitor on real data: financial tweets without
    drift, a sudden switch to banking77 utterances, and a gradual mix (0 to 50 % over 10
    windows). The last line printed is a JSON object with the false alarms and the delays.
    See docs/benchmarks.md#drift."""
    from bench import drift
    from loop.drift.monitor import config_of

    settings = load_settings()
    result = drift.run(
        seeds=seeds,
        window=window,
        reference_windows=reference_windows,
        windows=windows,
        seed_size=seed_size,
        config=config_of(settings.drift),
        other_csv=other or drift.BANKING / "train.csv",
    )
    typer.echo(drift.report(result))
    summary = {k: v for k, v in result.items() if k != "runs"}
    typer.echo(json.dumps(summary))
    if not result["passed"]:
        raise typer.Exit(1)
