"""``alloop bench``: the benchmarks; each command only parses options and calls :mod:`bench`."""

from __future__ import annotations

import json
import logging
from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from cli import bench_curve
from cli.common import TrainerModelKind, load_settings

logger = logging.getLogger("alloop")

bench_app = typer.Typer(
    help="Benchmarks that print their figures (see docs/benchmarks.md).", no_args_is_help=True
)
bench_app.command("learning-curve")(bench_curve.learning_curve)


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
        int,
        typer.Option(
            help="Batch size for both the raw model and the scorer.",
            envvar="ALLOOP_SCORER__BATCH_SIZE",
        ),
    ] = 64,
    warmup: Annotated[
        float,
        typer.Option(
            help="Fraction of documents that warms the scorers up before the rounds (memory "
            "growth is measured from its end), and of each round left out of its steady rate."
        ),
    ] = 0.1,
    tasks: Annotated[
        str,
        typer.Option(
            help="classification: the pipeline against the raw model (real broker). "
            "classification,entities: the scorer with both tasks in this process, in "
            "ALLOOP_PRECISION (auto: int8 where the CPU has VNNI, else bfloat16 where it has "
            "that in hardware, else float32) "
            "against float32 and the path before issue 16 (docs/benchmarks.md)."
        ),
    ] = "classification",
    scorers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Scorer processes in one consumer group (the raw topic gets 3 partitions per "
            "scorer), and as many raw model processes at once on the raw side.",
        ),
    ] = 1,
    threads: Annotated[
        int,
        typer.Option(
            min=0,
            help="torch threads per scorer and per raw model process (0: torch's default, "
            "one per core). On 2 cores, --scorers 2 --threads 1 tags the most.",
            envvar="ALLOOP_SCORER__THREADS",
        ),
    ] = 0,
    rounds: Annotated[
        int,
        typer.Option(
            min=1,
            help="Rounds of documents through the pipeline after the warm-up, each between "
            "two runs of the raw model, so that a machine whose speed drifts moves both sides "
            "alike.",
        ),
    ] = 4,  # bench.throughput.DEFAULT_ROUNDS (not imported here: the CLI starts fast)
) -> None:
    """Documents per second through the whole pipeline (real broker, real scorer process)
    against the raw model on the same documents, and the scorer's memory over the stream;
    with --tasks classification,entities, the scorer in ALLOOP_PRECISION against its float32
    path and the path before issue 16, on the same batches.

    Starts its own broker unless ALLOOP_KAFKA__BOOTSTRAP_SERVERS is set. The last line printed
    is a JSON object with every figure.
    """
    from bench import throughput, throughput_tasks
    from workers.scorer import Scorer

    settings = load_settings()
    if tasks != "classification":
        if scorers != 1:
            raise typer.BadParameter("--scorers applies to the pipeline (--tasks classification)")
        if rounds != throughput.DEFAULT_ROUNDS:
            raise typer.BadParameter("--rounds applies to the pipeline (--tasks classification)")
        from loop.embeddings.backbone import use_threads

        use_threads(threads)
        both = throughput_tasks.run(
            settings, Scorer, documents, batch_size, warmup, tasks.split(",")
        )
        typer.echo(throughput_tasks.report(both))
        return
    result = throughput.run(
        documents,
        batch_size,
        warmup,
        servers=settings.kafka.bootstrap_servers or None,
        scorers=scorers,
        threads=threads,
        rounds=rounds,
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
    model_kind: TrainerModelKind = "setfit",
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


@bench_app.command("drift-selection")
def bench_drift_selection(
    seeds: Annotated[int, typer.Option(help="Runs, each with its own stream.")] = 3,
    budget: Annotated[int, typer.Option(help="Labels per window.")] = 10,
    intents: Annotated[int, typer.Option(help="banking77 intents of the new source.")] = 10,
    share: Annotated[
        float,
        typer.Option(help="The drift share of each round.", envvar="ALLOOP_DRIFT__SELECTION_SHARE"),
    ] = 0.3,
) -> None:
    """Does drift-aware selection learn a new source faster? Financial tweets, then banking77
    utterances rising to 50 % of the stream; labels per window with and without the drift
    share; macro-F1 on the new source's test set, area over the seeds. The last line printed
    is a JSON object with both areas. See docs/benchmarks.md#drift-aware-selection."""
    from bench import drift_selection as bench
    from loop.drift.monitor import config_of

    settings = load_settings()
    encoder = bench.cached_encoder(settings.home / "cache" / "bench-embeddings")
    pool = bench.read_pool(encoder, intents=intents, old_size=2800, old_test=600)
    result = bench.run(
        pool,
        seeds=seeds,
        budget=budget,
        share=share,
        window=settings.drift.window_size,
        reference_windows=settings.drift.reference_windows,
        config=config_of(settings.drift),
        progress=partial(typer.echo, err=True),
    )
    typer.echo(bench.report(result))
    typer.echo(json.dumps({k: v for k, v in result.items() if k != "runs"}))
