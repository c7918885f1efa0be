"""The ``alloop`` command: the entry point for everything alloop runs. Each command group
lives in its own module of this package; this one puts them together."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from cli import bench, data, drift, evaluate, labels, models, stack, workers
from cli.common import load_settings
from loop.errors import AlloopError

logger = logging.getLogger("alloop")

app = typer.Typer(
    name="alloop",
    help="An active-learning labeling loop: stream documents through Kafka, tag them with the "
    "served model, label the uncertain ones, retrain, evaluate, promote.\n\n"
    "Configuration comes from ALLOOP_* environment variables (docs/configuration.md).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
app.add_typer(stack.stack_app, name="stack")
app.add_typer(workers.worker_app, name="worker")
app.add_typer(models.models_app, name="models")
app.add_typer(bench.bench_app, name="bench")
app.add_typer(labels.labels_app, name="labels")
app.add_typer(drift.drift_app, name="drift")
app.command("ingest")(data.ingest)
app.command("train")(data.train)
app.command("evaluate")(evaluate.evaluate)
app.command("annotate")(data.annotate)
app.command("api")(workers.api)


@app.command("demo")
def demo(
    dataset: Annotated[
        Path | None, typer.Option(help="Folder with sent_train.csv and sent_valid.csv.")
    ] = None,
    seed_per_label: Annotated[
        int, typer.Option(help="Labelled tweets per class for the seed.")
    ] = 16,
    limit: Annotated[int | None, typer.Option(help="Stream at most this many tweets.")] = None,
    iterations: Annotated[int, typer.Option(help="SetFit pairs per seed example.")] = 10,
    retrain: Annotated[
        bool, typer.Option(help="Train a new seed model even if one is promoted.")
    ] = False,
    argilla: Annotated[
        bool, typer.Option(help="Run the labeling half too: Argilla, labeler, trainer.")
    ] = True,
    oracle_labels: Annotated[
        int, typer.Option(help="Records the oracle annotator answers (0: leave them to people).")
    ] = 60,
    entities: Annotated[
        bool,
        typer.Option(help="Run the entity task too (STOCK, CRYPTO, FOREX from the patterns)."),
    ] = True,
    entity_labels: Annotated[
        int,
        typer.Option(help="Entity records the oracle answers by accepting their suggestions."),
    ] = 20,
) -> None:
    """Run the whole loop on the local stack with real financial tweets.

    Starts the broker and Argilla, trains a seed model on a few labelled tweets per class,
    starts a scorer, the API, the labeler and the trainer, streams the other tweets through and
    prints throughput and a sample of tagged documents. The uncertain ones wait in Argilla
    (address and annotator account printed); the oracle annotator answers --oracle-labels of
    them, the trainer makes a new version, and its evaluation and delta are printed. With
    --entities (the default) every tweet is also tagged with STOCK, CRYPTO and FOREX entities,
    unseen and doubtful ones wait in a second Argilla dataset, the oracle accepts the suggested
    spans of --entity-labels of them in two halves, and the two entity versions and their delta
    are printed. Everything keeps running for you to label more (alloop stack down stops it).
    """
    from cli import demo as demo_module
    from loop.datasets import DEFAULT_DATASET

    settings = load_settings()
    demo_module.run(
        settings,
        dataset or DEFAULT_DATASET,
        seed_per_label=seed_per_label,
        limit=limit,
        iterations=iterations,
        retrain=retrain,
        argilla=argilla,
        oracle_labels=oracle_labels,
        entities=entities,
        entity_labels=entity_labels,
    )


def main() -> None:
    """Run the CLI; alloop's own errors become one line on stderr and exit code 2."""
    from connectors.kafka import describe_error

    try:
        app()
    except AlloopError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except Exception as exc:  # Kafka and OS errors: one readable line, details in debug logs
        from kafka.errors import KafkaError

        if not isinstance(exc, KafkaError | OSError):
            raise
        logger.debug("command failed", exc_info=True)
        typer.echo(f"error: {describe_error(exc)}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
