"""``alloop train --task entities``: the entity extractor's seed model from a labelled file."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer

from cli.common import fail, report_scored
from loop.settings import Settings


def train_entities(
    settings: Settings,
    data: Path,
    *,
    test: Path | None,
    types: str | None,
    promote: bool,
    seed_store: bool,
) -> None:
    """Train the entity extractor (ALLOOP_ENTITIES__MODEL_KIND) on a CoNLL, JSONL or CSV
    file, register it in the entity registry, and score every entity version on the frozen
    test set when there is one."""
    from loop.entities.conll import read_labelled
    from loop.entities.factories import factory_for
    from loop.entities.seed import (
        file_types,
        score_entity_versions,
        seed_span_labels,
        train_seed,
    )
    from loop.labels import LabelStore
    from loop.registry import ModelRegistry
    from loop.training.split import TEST_FILE
    from workers.train_round import entity_round_config

    items = read_labelled(data)
    found = file_types(items)
    if not found:
        fail(f"{data}: no entity span to train on (CoNLL token<TAB>tag, or JSONL spans)")
    chosen = [t.strip() for t in types.split(",") if t.strip()] if types else found
    if missing := sorted(set(found) - set(chosen)):
        fail(f"{data}: types {', '.join(missing)} are not among --types {', '.join(chosen)}")
    if sorted(chosen) != sorted(settings.entities.types):
        typer.echo(
            f"note: training types {', '.join(chosen)}; the entity rounds train "
            f"ALLOOP_ENTITIES__TYPES ({', '.join(settings.entities.types)}): set it to the "
            "same types for the rounds that follow",
            err=True,
        )
    held = read_labelled(test) if test is not None else []
    training = {item.id for item in items}
    if overlap := sorted(item.id for item in held if item.id in training):
        fail(f"{test}: {len(overlap)} document(s) are in --data too, e.g. {overlap[0]}")

    task = settings.entities.task
    store = LabelStore(
        settings.labels_path, settings.argilla.min_submitted, settings.argilla.min_agreement
    )
    if seed_store:
        added = seed_span_labels(items, store, task)
        typer.echo(f"label store: {added} seed label(s) added to {store.path}", err=True)
    if held:
        added = seed_span_labels(held, store, task, origin=TEST_FILE)
        typer.echo(f"label store: {added} test label(s) from {test} added", err=True)

    config = replace(entity_round_config(settings), types=tuple(chosen))
    factory = factory_for(settings.entities.model_kind)
    registry = ModelRegistry(settings.entity_registry_path)
    spans = sum(len(item.example.spans) for item in items)
    typer.echo(
        f"training a {factory.name} entity model on {len(items)} documents "
        f"({spans} spans of {', '.join(chosen)}) ...",
        err=True,
    )
    card = train_seed(items, factory, registry, config, promote=promote)
    state = "promoted" if promote else "not promoted"
    typer.echo(f"registered entity {card.version} ({state}) with types {', '.join(card.labels)}")
    scored = score_entity_versions(store.labelled(task), registry, config)
    report_scored(registry.card(card.version).metrics, scored.size, scored.origins)
