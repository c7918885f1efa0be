"""The ``alloop`` command: the entry point for everything alloop runs."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError

from loop.errors import AlloopError, ConfigError
from loop.messages import ModelEvent
from loop.settings import Settings
from workers import logs

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
stack_app = typer.Typer(
    help="Start, stop and inspect the local stack (broker, Argilla).", no_args_is_help=True
)
worker_app = typer.Typer(help="Run one of alloop's worker processes.", no_args_is_help=True)
models_app = typer.Typer(
    help="List, inspect, promote and roll back model versions.", no_args_is_help=True
)
bench_app = typer.Typer(
    help="Benchmarks that print their figures (see docs/benchmarks.md).", no_args_is_help=True
)
app.add_typer(stack_app, name="stack")
app.add_typer(worker_app, name="worker")
app.add_typer(models_app, name="models")
app.add_typer(bench_app, name="bench")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


PREFIX = str(Settings.model_config["env_prefix"])
DELIMITER = str(Settings.model_config["env_nested_delimiter"])


def _settings() -> Settings:
    try:
        settings = Settings()
    except ValidationError as exc:  # one line per setting, naming its variable, never its value
        problems = "; ".join(
            f"{PREFIX}{DELIMITER.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors(include_input=False)
        )
        raise ConfigError(f"invalid settings: {problems}") from None
    logs.configure(settings.log_level)
    return settings


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


# stack ------------------------------------------------------------------------------------


@stack_app.command("up")
def stack_up(
    as_json: JsonOption = False,
    argilla: Annotated[
        bool, typer.Option(help="Also start Argilla (Redis, server, worker) without Elasticsearch.")
    ] = True,
) -> None:
    """Start the local stack: a Kafka-protocol broker (Tansu, in memory) and Argilla.

    Everything binds to 127.0.0.1 on free ports and is recorded in $ALLOOP_HOME/stack, so
    other commands find it without flags. What already runs is kept. The first start installs
    argilla-server 2.8.0 into its own virtualenv (ALLOOP_ARGILLA__VENV) and prints the Argilla
    accounts once; they stay in $ALLOOP_HOME/stack/argilla.json (mode 0600). With
    ALLOOP_KAFKA__BOOTSTRAP_SERVERS or ALLOOP_ARGILLA__URL set, that part is not started.
    """
    from workers import stack
    from workers.argilla_local import starter as argilla_starter

    settings = _settings()
    if settings.kafka.bootstrap_servers:
        typer.echo(
            f"ALLOOP_KAFKA__BOOTSTRAP_SERVERS={settings.kafka.bootstrap_servers} is set: "
            "alloop uses that broker and starts none.",
            err=True,
        )
    start_argilla = argilla and not settings.argilla.url
    first_time = not (settings.state_dir / stack.CREDENTIALS_FILE).exists()
    stack.up(
        settings.state_dir,
        argilla_starter(settings) if start_argilla else None,
        broker=not settings.kafka.bootstrap_servers,
    )
    info = stack.status(settings.state_dir)
    if as_json:
        typer.echo(stack.dumps(info))
        return
    for name, service in info.items():
        typer.echo(
            f"{name:15} pid {service['pid']:<8} {service['address'] or service['url'] or ''}"
        )
    if start_argilla and first_time:
        _print_accounts(settings)


def _print_accounts(settings: Settings) -> None:
    from workers.stack import ArgillaCredentials

    found = ArgillaCredentials.load(settings.state_dir)
    typer.echo(
        f"\nArgilla UI   {found.url}\n"
        f"  annotator  {found.annotator} / {found.annotator_password}\n"
        f"  owner      {found.owner} / {found.owner_password}  (API key in "
        f"{settings.state_dir / 'argilla.json'})\n"
        "  `alloop stack status --accounts` shows them again"
    )


@stack_app.command("down")
def stack_down() -> None:
    """Stop every process `stack up` (and `demo`) started, by pid. The broker's data goes too."""
    from workers import stack

    settings = _settings()
    stopped = stack.down(settings.state_dir)
    typer.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@stack_app.command("status")
def stack_status(
    as_json: JsonOption = False,
    accounts: Annotated[
        bool, typer.Option(help="Also show the local Argilla's accounts and passwords.")
    ] = False,
) -> None:
    """Show what the local stack runs, where, and whether it is alive."""
    from workers import stack

    settings = _settings()
    info = stack.status(settings.state_dir)
    if as_json:
        typer.echo(stack.dumps(info))
        return
    if not info:
        typer.echo("nothing is running (alloop stack up starts the broker and Argilla)")
    for name, service in info.items():
        state = "running" if service["running"] else "DEAD"
        where = service["address"] or service["url"] or ""
        typer.echo(f"{name:15} {state:8} pid {service['pid']:<8} {where}")
    if accounts:
        _print_accounts(settings)


# ingest -----------------------------------------------------------------------------------


@app.command("ingest")
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
    from loop.readers import Columns, parse_label_map, read_documents
    from workers.bus import bootstrap_servers, ensure_topics, make_producer
    from workers.ingest import publish

    settings = _settings()
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


@app.command("train")
def train(
    data: Annotated[Path, typer.Option("--data", help="Labelled .csv or .jsonl file.")],
    label_column: Annotated[str, typer.Option(help="Field that holds the label.")] = "label",
    labels_column: Annotated[
        str,
        typer.Option(
            help="Field that holds the label set (multi-label, with "
            "ALLOOP_CLASSIFICATION__MULTI_LABEL=true): a JSON list, or labels joined by '|'."
        ),
    ] = "labels",
    text_column: Annotated[str, typer.Option(help="Field that holds the text.")] = "text",
    label_map: Annotated[
        str | None, typer.Option(help="Rename raw labels, e.g. '0=Bearish,1=Bullish,2=Neutral'.")
    ] = None,
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
) -> None:
    """Train a SetFit classifier on a labelled seed file and register it as a new version
    (a multi-label one, on the label sets, when ALLOOP_CLASSIFICATION__MULTI_LABEL is true).

    The version is scored on the frozen test set (the labelled evaluation sample and the
    --test file) when there is one, so the improvement curve starts at this seed model."""
    from loop.labels import LabelStore
    from loop.messages import Document
    from loop.models.base import ClassifierConfig
    from loop.models.setfit_classifier import SetFitFactory
    from loop.readers import Columns, Rejected, parse_label_map, read_documents
    from loop.registry import ModelRegistry
    from loop.rounds import score_versions
    from loop.split import TEST_FILE
    from loop.training import seed_labels, train_and_publish
    from workers.demo import take_per_label

    settings = _settings()
    multi_label = settings.classification.multi_label
    columns = Columns(
        text=text_column,
        label=label_column,
        labels=labels_column,
        label_names=parse_label_map(label_map),
    )

    def labelled_rows(path: Path) -> tuple[list[Document], int]:
        rows, rejected = [], 0
        for item in read_documents(path, columns):
            if isinstance(item, Rejected):
                rejected += 1
                typer.echo(f"rejected {item.source}:{item.line}: {item.reason}", err=True)
            elif (item.labels if multi_label else item.label) is not None:
                rows.append(item)
        return rows, rejected

    docs, rejected = labelled_rows(data)
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
    task = settings.trainer.task
    if seed_store:
        added = seed_labels(docs, store, task)
        typer.echo(f"label store: {added} seed label(s) added to {store.path}", err=True)
    if test is not None:
        held, _ = labelled_rows(test)
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
    if scored.size:
        evaluation = registry.card(card.version).metrics or {}
        f1 = evaluation.get("evaluation", {}).get("macro", {}).get("f1")
        typer.echo(
            f"scored on the frozen test set: {scored.size} documents {scored.origins}, "
            f"macro-F1 {f1:.3f}"
            if f1 is not None
            else "could not be scored on the test set"
        )
    else:
        typer.echo(
            "no frozen test set yet: the evaluation sample (ALLOOP_SCORER__EVALUATION_FRACTION) "
            "fills it as people label it, or give one with --test"
        )


@models_app.command("list")
def models_list(as_json: JsonOption = False) -> None:
    """List model versions, newest last; the promoted one is marked with *."""
    from loop.registry import ModelRegistry

    registry = ModelRegistry(_settings().registry_path)
    cards = registry.cards()
    promoted = registry.promoted()
    if as_json:
        payload = {"promoted": promoted, "versions": [c.model_dump(mode="json") for c in cards]}
        typer.echo(json.dumps(payload, indent=2))
        return
    if not cards:
        typer.echo(f"no versions in {registry.root} (alloop train --data FILE makes one)")
    for card in cards:
        mark = "*" if card.version == promoted else " "
        count = card.counts.get("train", "?")
        typer.echo(
            f"{mark} {card.version}  {card.created_at:%Y-%m-%d %H:%M:%S}  {card.kind:8} "
            f"trained on {count} labels  parent {card.parent or '-'}"
        )


@models_app.command("show")
def models_show(version: Annotated[str, typer.Argument(help="A version, e.g. v0001.")]) -> None:
    """Print a version's card (labels, training arguments, counts, metrics) as JSON."""
    from loop.registry import ModelRegistry

    registry = ModelRegistry(_settings().registry_path)
    typer.echo(registry.card(version).model_dump_json(indent=2))


@models_app.command("promote")
def models_promote(version: Annotated[str, typer.Argument(help="The version to serve.")]) -> None:
    """Make VERSION the served model; scorers and the API switch to it without a restart."""
    from loop.registry import ModelRegistry

    settings = _settings()
    registry = ModelRegistry(settings.registry_path)
    before = registry.promoted()
    promotion = registry.promote(version)
    typer.echo(f"promoted {promotion.version}")
    if before != version:
        _announce(settings, ModelEvent(event="promoted", version=version, previous=before))


@models_app.command("rollback")
def models_rollback() -> None:
    """Serve the version that was promoted before the current one."""
    from loop.registry import ModelRegistry

    settings = _settings()
    registry = ModelRegistry(settings.registry_path)
    before = registry.promoted()
    promotion = registry.rollback()
    typer.echo(f"rolled back from {before} to {promotion.version}")
    if promotion.version is not None:
        _announce(
            settings, ModelEvent(event="rolled_back", version=promotion.version, previous=before)
        )


@models_app.command("stopping")
def models_stopping(
    last: Annotated[int, typer.Option(help="Labels the gain is read over.")] = 100,
    kappa: Annotated[
        float, typer.Option(help="Mean kappa between consecutive versions that means stop.")
    ] = 0.99,
    window: Annotated[int, typer.Option(help="Consecutive version pairs the mean is over.")] = 3,
    as_json: JsonOption = False,
) -> None:
    """When to stop labeling: what the last labels bought (the macro-F1 gain with its
    interval) and whether the versions' predictions have settled (small-text's KappaAverage
    on the test documents). Same as GET /v1/curves/stopping; see docs/evaluation.md."""
    from loop.registry import ModelRegistry
    from loop.stopping import from_registry

    signal = from_registry(
        ModelRegistry(_settings().registry_path), last=last, kappa=kappa, window=window
    )
    if as_json:
        typer.echo(signal.model_dump_json(indent=2))
        return
    typer.echo(
        f"versions   {', '.join(signal.versions) or '-'} on {signal.test_size} test documents"
    )
    if signal.kappa:
        typer.echo(
            f"kappa      {' '.join(f'{k:.3f}' for k in signal.kappa)} (stop at a mean of "
            f"{signal.kappa_threshold} over {signal.kappa_window})"
        )
    typer.echo(signal.advice)


def _announce(settings: Settings, event: ModelEvent) -> None:
    """Announce a promotion made by hand on the models topic, as the trainer does."""
    from workers.bus import announce

    if not announce(settings, [event]):
        typer.echo(
            f"note: the {event.event} event could not be put on "
            f"{settings.kafka.topics.models} (is the broker up?); the change itself stands",
            err=True,
        )


# workers and the API ----------------------------------------------------------------------


@worker_app.command("scorer")
def worker_scorer(
    worker_id: Annotated[str | None, typer.Option(help="Name in logs and headers.")] = None,
) -> None:
    """Consume docs.raw, tag every document with the promoted model, publish docs.tagged.

    Reloads when a new version is promoted; stops cleanly on SIGTERM or Ctrl-C. Batch size,
    group and topics come from ALLOOP_SCORER__* and ALLOOP_KAFKA__* settings.
    """
    from workers import scorer
    from workers.bus import bootstrap_servers

    settings = _settings()
    scorer.run(settings, bootstrap_servers(settings), worker_id)


@worker_app.command("trainer")
def worker_trainer(
    worker_id: Annotated[str, typer.Option(help="Name in logs and headers.")] = "trainer",
) -> None:
    """Consume labels into the label store; retrain when enough arrived; promote if better.

    A round starts after ALLOOP_TRAINER__MIN_NEW_LABELS new answers (or when the first of them
    waited ALLOOP_TRAINER__MAX_WAIT_S), runs in a fresh process, trains on all agreed labels,
    evaluates on the frozen test set and promotes through the gate (docs/evaluation.md).
    """
    from workers import trainer
    from workers.bus import bootstrap_servers

    settings = _settings()
    trainer.run(settings, bootstrap_servers(settings), worker_id)


@worker_app.command("labeler")
def worker_labeler(
    worker_id: Annotated[str, typer.Option(help="Name in logs and headers.")] = "labeler",
    vectors: Annotated[
        bool, typer.Option(help="Attach MiniLM embeddings so Argilla can find similar records.")
    ] = True,
) -> None:
    """Consume candidates and keep one Argilla dataset per task, within the budget.

    Records are keyed by document id (a replay updates, never duplicates) and carry the model's
    suggestion, the selection metadata and, with --vectors, an embedding. Every
    ALLOOP_ARGILLA__POLL_INTERVAL_S it also re-publishes answers whose webhook was missed.
    Argilla's address and key: ALLOOP_ARGILLA__URL / __API_KEY, else the local stack's.
    """
    from workers import labeler
    from workers.bus import bootstrap_servers

    settings = _settings()
    labeler.run(settings, bootstrap_servers(settings), worker_id, vectors)


@app.command("annotate")
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
    from loop.messages import Document
    from loop.readers import Columns, parse_label_map, read_documents
    from workers.annotate import Gold, Oracle
    from workers.labeler import connect

    settings = _settings()
    columns = Columns(labels=labels_column, label_names=parse_label_map(label_map))
    gold = Gold(d for d in read_documents(oracle, columns) if isinstance(d, Document))
    if not gold and not accept_suggestions:
        fail(f"{oracle}: no labelled documents in it")
    url, _ = connect(settings)
    key = settings.argilla.annotator_api_key
    if key is None:
        from workers.stack import argilla_credentials

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


@app.command("api")
def api(
    host: Annotated[str | None, typer.Option(help="Bind address (ALLOOP_API__HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (ALLOOP_API__PORT).")] = None,
) -> None:
    """Serve the HTTP API (classification, models, health, metrics; docs at /docs)."""
    from api.server import serve

    settings = _settings()
    updates = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    if updates:
        settings = settings.model_copy(update={"api": settings.api.model_copy(update=updates)})
    serve(settings)


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
    from workers import demo as demo_module

    settings = _settings()
    demo_module.run(
        settings,
        dataset or demo_module.DEFAULT_DATASET,
        seed_per_label=seed_per_label,
        limit=limit,
        iterations=iterations,
        retrain=retrain,
        argilla=argilla,
        oracle_labels=oracle_labels,
        entities=entities,
        entity_labels=entity_labels,
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
    scored on --test. Same table, picture and last line. See docs/benchmarks.md.

    --multi-label (classification): the documents carry label sets, as the NLU++ folds do
    (--labels-column intents); the head is one-vs-rest, selection ranks by the label nearest
    0.5, and macro-F1 is computed label by label.

    Both write a PNG and a JSON (mean and spread over --seeds runs).
    """
    _settings()
    if end_to_end and task != "classification":
        fail("--end-to-end runs the classification curve only")
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
            learning_curve_e2e.run, window=window, model_kind=model_kind, gate_size=gate_size
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

    _settings()
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

    _settings()
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

    _settings()
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

    _settings()
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
) -> None:
    """Documents per second through the whole pipeline (real broker, real scorer process)
    against the raw model on the same documents, and the scorer's memory over the stream.

    Starts its own broker unless ALLOOP_KAFKA__BOOTSTRAP_SERVERS is set. The last line printed
    is a JSON object with every figure.
    """
    from bench import throughput

    settings = _settings()
    result = throughput.run(
        documents, batch_size, warmup, servers=settings.kafka.bootstrap_servers or None
    )
    typer.echo(throughput.report(result))


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
) -> None:
    """SIGKILL the loop's processes at random moments while tweets stream through it, then
    check that nothing was lost or duplicated.

    Starts a private broker and local Argilla, trains a SetFit seed version for the scorer,
    runs the scorer, labeler, trainer and API as real processes, and lets the oracle annotator
    answer every Argilla record. While --documents stream at --rate, each process is killed
    --kills times (moments drawn with --seed) and restarted at once. Then it checks: every
    document on the tagged topic (copies byte-identical), one Argilla record per candidate, one
    label per answer in the label store, every version loadable, no process exiting on its
    own. The last line printed is a JSON object with the figures; the exit code is 1 when an
    invariant fails. See docs/reliability.md#fault-injection.
    """
    from bench import chaos

    _settings()
    figures = chaos.run(
        documents,
        kills=kills,
        seed=seed,
        rate=rate,
        model_kind=model_kind,
        settle_timeout_s=settle_timeout,
    )
    typer.echo(chaos.report(figures))
    typer.echo(json.dumps(figures))
    if figures["failures"]:
        raise typer.Exit(1)


def main() -> None:
    """Run the CLI; alloop's own errors become one line on stderr and exit code 2."""
    from workers.bus import describe_error

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
