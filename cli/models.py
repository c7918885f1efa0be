"""``alloop models``: list, inspect, promote and roll back versions; the stopping signal."""

from __future__ import annotations

import json
import logging
from functools import partial
from typing import TYPE_CHECKING, Annotated

import typer

from cli.common import JsonOption, TaskOption, load_settings
from loop.messages import ModelEvent
from loop.settings import Settings

if TYPE_CHECKING:
    from loop.registry import ModelRegistry

logger = logging.getLogger("alloop")

models_app = typer.Typer(
    help="List, inspect, promote and roll back model versions.", no_args_is_help=True
)


def _registry(settings: Settings, task: str) -> ModelRegistry:
    """The registry of ``task`` (the classifier's, or the entity extractor's)."""
    from loop.registry import ModelRegistry

    return ModelRegistry(settings.task_registry_path(task))


@models_app.command("list")
def models_list(as_json: JsonOption = False, task: TaskOption = "classification") -> None:
    """List model versions, newest last; the promoted one is marked with *."""
    settings = load_settings()
    registry = _registry(settings, task)
    cards = registry.cards()
    promoted = registry.promoted()
    if as_json:
        payload = {"promoted": promoted, "versions": [c.model_dump(mode="json") for c in cards]}
        typer.echo(json.dumps(payload, indent=2))
        return
    if not cards:
        option = " --task " + task if settings.is_entity_task(task) else ""
        typer.echo(f"no versions in {registry.root} (alloop train{option} --data FILE makes one)")
    for card in cards:
        mark = "*" if card.version == promoted else " "
        count = card.counts.get("train", "?")
        typer.echo(
            f"{mark} {card.version}  {card.created_at:%Y-%m-%d %H:%M:%S}  {card.kind:8} "
            f"trained on {count} labels  parent {card.parent or '-'}"
        )


@models_app.command("show")
def models_show(
    version: Annotated[str, typer.Argument(help="A version, e.g. v0001.")],
    task: TaskOption = "classification",
) -> None:
    """Print a version's card (labels, training arguments, counts, metrics) as JSON."""
    registry = _registry(load_settings(), task)
    typer.echo(registry.card(version).model_dump_json(indent=2))


@models_app.command("promote")
def models_promote(
    version: Annotated[str, typer.Argument(help="The version to serve.")],
    task: TaskOption = "classification",
) -> None:
    """Make VERSION the served model; scorers and the API switch to it without a restart."""
    settings = load_settings()
    registry = _registry(settings, task)
    before = registry.promoted()
    promotion = registry.promote(version)
    typer.echo(f"promoted {promotion.version}")
    if before != version:
        _announce(settings, ModelEvent(event="promoted", version=version, previous=before))


@models_app.command("rollback")
def models_rollback(task: TaskOption = "classification") -> None:
    """Serve the version that was promoted before the current one."""
    settings = load_settings()
    registry = _registry(settings, task)
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
    from loop.evaluation.stopping import from_registry
    from loop.registry import ModelRegistry

    signal = from_registry(
        ModelRegistry(load_settings().registry_path), last=last, kappa=kappa, window=window
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
    from connectors.kafka import announce
    from stack.discovery import bootstrap_servers

    if not announce(partial(bootstrap_servers, settings), settings, [event]):
        typer.echo(
            f"note: the {event.event} event could not be put on "
            f"{settings.kafka.topics.models} (is the broker up?); the change itself stands",
            err=True,
        )
