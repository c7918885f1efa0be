"""Data in and out of the loop: ``alloop ingest``, ``alloop train`` (the seed model) and ``alloop annotate``."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Annotated

import typer

from cli.common import (
    LabelColumn,
    LabelMap,
    LabelsColumn,
    TaskOption,
    TextColumn,
    fail,
    labelled_rows,
    load_settings,
    report_scored,
)

logger = logging.getLogger("alloop")


# ingest -----------------------------------------------------------------------------------


def ingest(
    path: Annotated[Path, typer.Argument(help="A .jsonl or .csv file, or a folder of .txt files.")],
    text_column: Annotated[str, typer.Option(help="Field that holds the text.")] = "text",
    id_column: Annotated[
        str, typer.Option(help="Field that holds the id (else a content hash).")
    ] = "id",
    label_column: Annotated[
        str, typer.Option(help="Field that holds a known label, if any.")
    ] = "label",
    label_map: Annotated[
        str | None, typer.Option(help="Rename raw labels, e.g. '0=Bearish,1=Bullish,2=Neutral'.")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Publish documents to the raw topic (docs.raw), keyed by their id.

    Malformed lines are reported with their line numbers and skipped. Exit code: 0 when every
    line was published, 1 when some were rejected, 2 on an error that stopped the command.
    """
    from connectors.ingest import publish
    from connectors.kafka import ensure_topics, make_producer
    from loop.readers import Columns, parse_label_map, read_documents
    from stack.discovery import bootstrap_servers

    settings = load_settings()
    columns = Columns(
        text=text_column, id=id_column, label=label_column, label_names=parse_label_map(label_map)
    )
    items = read_documents(path, columns)
    servers = bootstrap_servers(settings)
    topics = settings.kafka.topics
    ensure_topics(servers, [topics.raw], topics.partitions)
    producer = make_producer(servers, settings.kafka)
    try:
        report = publish(items, producer, topics.raw, progress=progress)
    finally:
        producer.close(timeout=10)
    typer.echo(
        f"published {report.published} documents to {topics.raw}; rejected {len(report.rejected)}"
    )
    if report.rejected:
        raise typer.Exit(1)


# train and models -------------------------------------------------------------------------


def train(
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            help="Labelled .csv or .jsonl file (--task entities: CoNLL, .jsonl or .csv spans).",
        ),
    ],
    label_column: LabelColumn = "label",
    labels_column: LabelsColumn = "labels",
    text_column: TextColumn = "text",
    label_map: LabelMap = None,
    per_label: Annotated[
        int | None, typer.Option(help="Use at most this many examples of each label (file order).")
    ] = None,
    iterations: Annotated[int, typer.Option(help="SetFit contrastive pairs per example.")] = 10,
    epochs: Annotated[int, typer.Option(help="SetFit epochs over the pairs.")] = 1,
    freeze_body: Annotated[
        bool, typer.Option(help="Fit the head only (fast, less accurate).")
    ] = False,
    promote: Annotated[bool, typer.Option(help="Promote the new version at once.")] = True,
    seed_store: Annotated[
        bool,
        typer.Option(
            help="Also put the documents into the label store, so the trainer's rounds keep them."
        ),
    ] = True,
    test: Annotated[
        Path | None,
        typer.Option(
            "--test",
            help="An evaluation file (same columns as --data): its labelled rows join the "
            "frozen test set in the label store, and every version is scored on it.",
        ),
    ] = None,
    task: TaskOption = "classification",
    types: Annotated[
        str | None,
        typer.Option(
            help="Entities: the types to learn, comma-separated (default: those in --data)."
        ),
    ] = None,
) -> None:
    """Train a seed model on a labelled file and register it as a new version.

    Classification (the default): a SetFit classifier on a .csv or .jsonl file (a
    multi-label one, on the label sets, when ALLOOP_CLASSIFICATION__MULTI_LABEL is true).

    --task entities: the entity extractor (ALLOOP_ENTITIES__MODEL_KIND, trained for
    ALLOOP_ENTITIES__EPOCHS within ALLOOP_ENTITIES__TIME_BUDGET_S) on a CoNLL file
    (`token<TAB>tag`, BIO), a .jsonl file with character spans ({"text", "spans": [{"start",
    "end", "label"}]}) or a .csv file with text and spans (JSON) columns; the column and
    SetFit options do not apply. It goes to the entity registry.

    The version is scored on the frozen test set (the labelled evaluation sample and the
    --test file) when there is one, so the improvement curve starts at this seed model."""
    settings = load_settings()
    if settings.is_entity_task(task):
        from cli.entities import train_entities

        train_entities(
            settings, data, test=test, types=types, promote=promote, seed_store=seed_store
        )
        return
    from loop.classification.base import ClassifierConfig
    from loop.classification.setfit import SetFitFactory
    from loop.datasets import take_per_label
    from loop.labels import LabelStore
    from loop.readers import Columns, parse_label_map
    from loop.registry import ModelRegistry
    from loop.training.rounds import score_versions
    from loop.training.seed import seed_labels, train_and_publish
    from loop.training.split import TEST_FILE

    multi_label = settings.classification.multi_label
    columns = Columns(
        text=text_column,
        label=label_column,
        labels=labels_column,
        label_names=parse_label_map(label_map),
    )

    docs, rejected = labelled_rows(data, columns, multi_label)
    if not docs:
        wanted = f"a label set in {labels_column!r}" if multi_label else f"a {label_column!r}"
        fail(f"{data}: no document with {wanted} to train on")
    if per_label:
        docs = take_per_label(docs, per_label)
    config = ClassifierConfig(
        num_iterations=iterations,
        num_epochs=epochs,
        freeze_body=freeze_body,
        head_c=settings.trainer.head_c,
        multi_label=multi_label,
    )
    typer.echo(
        f"training on {len(docs)} labelled documents ({rejected} lines rejected) ...", err=True
    )
    registry = ModelRegistry(settings.registry_path)
    store = LabelStore(
        settings.labels_path, settings.argilla.min_submitted, settings.argilla.min_agreement
    )
    task = settings.label_task(task)  # the name its answers carry in the label store
    if seed_store:
        added = seed_labels(docs, store, task)
        typer.echo(f"label store: {added} seed label(s) added to {store.path}", err=True)
    if test is not None:
        held, _ = labelled_rows(test, columns, multi_label)
        training = {d.id for d in docs}
        if overlap := sorted(d.id for d in held if d.id in training):
            fail(f"{test}: {len(overlap)} document(s) are in --data too, e.g. {overlap[0]}")
        added = seed_labels(held, store, task, origin=TEST_FILE)
        typer.echo(f"label store: {added} test label(s) from {test} added", err=True)
    factory = SetFitFactory(cache_dir=settings.home / "trainer" / "embeddings")
    card = train_and_publish(docs, factory, registry, config, promote=promote)
    state = "promoted" if promote else "not promoted"
    typer.echo(f"registered {card.version} ({state}) with labels {', '.join(card.labels)}")
    scored = score_versions(store.labelled(task), registry, factory, multi_label)
    report_scored(registry.card(card.version).metrics, scored.size, scored.origins)


def annotate(
    oracle: Annotated[
        Path,
        typer.Option(
            help="Gold file (.jsonl or .csv with text and label; id optional) to answer from."
        ),
    ],
    rate: Annotated[float, typer.Option(help="Answers per second (0: as fast as possible).")] = 0,
    limit: Annotated[int | None, typer.Option(help="Stop after this many answers.")] = None,
    label_map: Annotated[
        str | None, typer.Option(help="Rename raw labels, e.g. '0=Bearish,1=Bullish,2=Neutral'.")
    ] = None,
    labels_column: Annotated[
        str,
        typer.Option(
            help="Field that holds the gold label set, for multi-label datasets (a JSON list, "
            "or labels joined by '|'; 'intents' in the NLU++ files)."
        ),
    ] = "labels",
    follow: Annotated[
        bool, typer.Option(help="Keep looking for new pending records until Ctrl-C.")
    ] = False,
    accept_suggestions: Annotated[
        bool,
        typer.Option(
            help="Entity records with no gold spans: submit the suggested spans, as a person "
            "accepting the pre-annotations would."
        ),
    ] = False,
    reason: Annotated[
        str | None,
        typer.Option(
            help="Answer only records queued for this reason (evaluation, uncertain, rare, "
            "unseen, random, cold-start)."
        ),
    ] = None,
) -> None:
    """Answer pending Argilla records with gold labels, as the annotator account.

    For tests, demos and benchmarks: signs in with ALLOOP_ARGILLA__ANNOTATOR_API_KEY (else the
    local stack's annotator), finds the records pending for it in alloop's datasets and submits
    the gold label of each record found in the gold file (by document id, else by text). In
    entity datasets it submits the gold spans, read from each gold document's
    metadata.entities (a list of {"label", "start", "end"}). In multi-label datasets it
    submits the gold label set (--labels-column), and discards a record whose set is empty.
    """
    from connectors.argilla.oracle import Gold, Oracle
    from loop.messages import Document
    from loop.readers import Columns, parse_label_map, read_documents
    from stack.discovery import argilla_address

    settings = load_settings()
    columns = Columns(labels=labels_column, label_names=parse_label_map(label_map))
    gold = Gold(d for d in read_documents(oracle, columns) if isinstance(d, Document))
    if not gold and not accept_suggestions:
        fail(f"{oracle}: no labelled documents in it")
    url, _ = argilla_address(settings)
    key = settings.argilla.annotator_api_key
    if key is None:
        from stack.credentials import argilla_credentials

        key_text = argilla_credentials(settings.state_dir, "annotator")[1]
    else:
        key_text = key.get_secret_value()
    bot = Oracle(
        url,
        key_text,
        gold,
        prefix=settings.argilla.dataset_prefix,
        rate=rate,
        accept_suggestions=accept_suggestions,
        reason=reason,
    )
    total = 0
    try:
        while True:
            tally = bot.run(None if limit is None else limit - total)
            total += tally.submitted
            typer.echo(
                f"answered {tally.submitted} record(s) {tally.by_label}; "
                + (f"{tally.discarded} discarded (no gold label); " if tally.discarded else "")
                + f"{tally.unknown} not in the gold file, {tally.failed} failed"
            )
            if not follow or (limit is not None and total >= limit):
                break
            time.sleep(2)
    except KeyboardInterrupt:
        pass
    finally:
        bot.close()
