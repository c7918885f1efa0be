"""``alloop stack``: start, stop and inspect the local stack (broker, Redis, Argilla)."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from cli.common import JsonOption, load_settings
from loop.settings import Settings

logger = logging.getLogger("alloop")

stack_app = typer.Typer(
    help="Start, stop and inspect the local stack (broker, Argilla).", no_args_is_help=True
)


# stack ------------------------------------------------------------------------------------


@stack_app.command("up")
def stack_up(
    as_json: JsonOption = False,
    argilla: Annotated[
        bool, typer.Option(help="Also start Argilla (Redis, server, worker) without Elasticsearch.")
    ] = True,
) -> None:
    """Start the local stack: a Kafka-protocol broker (Tansu) with its store, and Argilla.

    Everything binds to 127.0.0.1 and is recorded in $ALLOOP_HOME/stack, so other commands
    find it without flags. What already runs is kept. The broker keeps its topics and offsets
    in $ALLOOP_HOME/stack/broker-data and comes back on the same port
    (ALLOOP_STACK__BROKER_STORAGE=memory: in memory, on a new port each time). The first start installs
    argilla-server 2.8.0 into its own virtualenv (ALLOOP_ARGILLA__VENV) and prints the Argilla
    accounts once; they stay in $ALLOOP_HOME/stack/argilla.json (mode 0600). With
    ALLOOP_KAFKA__BOOTSTRAP_SERVERS or ALLOOP_ARGILLA__URL set, that part is not started.
    """
    from stack import local
    from stack.argilla import starter as argilla_starter
    from stack.credentials import CREDENTIALS_FILE

    settings = load_settings()
    if settings.kafka.bootstrap_servers:
        typer.echo(
            f"ALLOOP_KAFKA__BOOTSTRAP_SERVERS={settings.kafka.bootstrap_servers} is set: "
            "alloop uses that broker and starts none.",
            err=True,
        )
    start_argilla = argilla and not settings.argilla.url
    first_time = not (settings.state_dir / CREDENTIALS_FILE).exists()
    local.up(
        settings.state_dir,
        argilla_starter(settings) if start_argilla else None,
        broker=not settings.kafka.bootstrap_servers,
        storage=settings.stack.broker_storage,
    )
    info = local.status(settings.state_dir)
    if as_json:
        typer.echo(local.dumps(info))
        return
    for name, service in info.items():
        typer.echo(
            f"{name:15} pid {service['pid']:<8} {service['address'] or service['url'] or ''}"
        )
    if start_argilla and first_time:
        _print_accounts(settings)


def _print_accounts(settings: Settings) -> None:
    from stack.credentials import ArgillaCredentials

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
    """Stop every process `stack up` (and `demo`) started, by pid. The broker's data stays on disk."""
    from stack import local

    settings = load_settings()
    stopped = local.down(settings.state_dir)
    typer.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@stack_app.command("status")
def stack_status(
    as_json: JsonOption = False,
    accounts: Annotated[
        bool, typer.Option(help="Also show the local Argilla's accounts and passwords.")
    ] = False,
) -> None:
    """Show what the local stack runs, where, and whether it is alive."""
    from stack import local

    settings = load_settings()
    info = local.status(settings.state_dir)
    if as_json:
        typer.echo(local.dumps(info))
        return
    if not info:
        typer.echo("nothing is running (alloop stack up starts the broker and Argilla)")
    for name, service in info.items():
        state = "running" if service["running"] else "DEAD"
        where = service["address"] or service["url"] or ""
        typer.echo(f"{name:15} {state:8} pid {service['pid']:<8} {where}")
    if accounts:
        _print_accounts(settings)
