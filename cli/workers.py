"""``alloop worker scorer|trainer|labeler`` and ``alloop api``: the long-running processes."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from cli.common import load_settings

logger = logging.getLogger("alloop")

worker_app = typer.Typer(help="Run one of alloop's worker processes.", no_args_is_help=True)


# workers and the API ----------------------------------------------------------------------


@worker_app.command("scorer")
def worker_scorer(
    worker_id: Annotated[str | None, typer.Option(help="Name in logs and headers.")] = None,
) -> None:
    """Consume docs.raw, tag every document with the promoted model, publish docs.tagged.

    Reloads when a new version is promoted; stops cleanly on SIGTERM or Ctrl-C. Batch size,
    group and topics come from ALLOOP_SCORER__* and ALLOOP_KAFKA__* settings.
    """
    from stack.discovery import bootstrap_servers
    from workers import scorer

    settings = load_settings()
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
    from stack.discovery import bootstrap_servers
    from workers import trainer

    settings = load_settings()
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
    from stack.discovery import bootstrap_servers
    from workers import labeler

    settings = load_settings()
    labeler.run(settings, bootstrap_servers(settings), worker_id, vectors)


def api(
    host: Annotated[
        str | None,
        typer.Option(help="Bind address (default 127.0.0.1).", envvar="ALLOOP_API__HOST"),
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port (default 8000).", envvar="ALLOOP_API__PORT")
    ] = None,
) -> None:
    """Serve the HTTP API (classification, models, health, metrics; docs at /docs)."""
    from api.server import serve

    settings = load_settings()
    updates = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    if updates:
        settings = settings.model_copy(update={"api": settings.api.model_copy(update=updates)})
    serve(settings)
