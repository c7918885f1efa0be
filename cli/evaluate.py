"""``alloop evaluate VERSION --data FILE``: score any version on a labelled file of the owner's."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import BaseModel

from cli.common import (
    LabelColumn,
    LabelMap,
    LabelsColumn,
    TaskOption,
    TextColumn,
    fail,
    labelled_rows,
    load_settings,
)
from loop.evaluation.scoreboard import Scores
from loop.settings import Settings

if TYPE_CHECKING:
    from loop.readers import Columns


def evaluate(
    version: Annotated[str, typer.Argument(help="The version to score, e.g. v0002.")],
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            help="A labelled file: .csv or .jsonl with text and label (classification); "
            "CoNLL `token<TAB>tag`, .jsonl or .csv with character spans (entities).",
        ),
    ],
    task: TaskOption = "classification",
    label_column: LabelColumn = "label",
    labels_column: LabelsColumn = "labels",
    text_column: TextColumn = "text",
    label_map: LabelMap = None,
    predictions: Annotated[
        Path | None,
        typer.Option(
            help="Also write what the version said on each document here (JSON Lines: id, "
            "gold, predicted)."
        ),
    ] = None,
) -> None:
    """Score VERSION on a labelled file and print its evaluation as JSON.

    The same evaluation (same JSON) as GET /v1/evaluations/VERSION, read on your file instead
    of the frozen test set: per label (per entity type) precision, recall, F1, TP, FP, FN and
    support; micro and macro averages; the confusion matrix (entities: gold type against
    predicted type, with a "none" row and column for spans missed or made up). Entity versions
    are scored as they are served, merged with the patterns (ALLOOP_ENTITIES__PATTERNS,
    ALLOOP_ENTITIES__MERGE). Nothing is stored: the file does not join the test set (alloop
    train --test does that). A one-line summary goes to stderr."""
    settings = load_settings()
    if settings.is_entity_task(task):
        scores = _entity_scores(settings, version, data)
    else:
        from loop.readers import Columns, parse_label_map

        columns = Columns(
            text=text_column,
            label=label_column,
            labels=labels_column,
            label_names=parse_label_map(label_map),
        )
        scores = _classifier_scores(settings, version, data, columns)
    evaluation, rows = scores
    if predictions is not None:
        _write_rows(rows, predictions)
    typer.echo(evaluation.model_dump_json(indent=2))
    held = evaluation.model_dump()
    typer.echo(
        f"{version} on {held['test_size']} documents of {data}: macro-F1 "
        f"{held['macro']['f1']:.3f}, micro-F1 {held['micro']['f1']:.3f}",
        err=True,
    )


def _classifier_scores(settings: Settings, version: str, data: Path, columns: Columns) -> Scores:
    from loop.classification.factories import factory_for
    from loop.evaluation.scoreboard import TestSet
    from loop.labels import agreed
    from loop.registry import ModelRegistry
    from loop.training.rounds import version_scorer
    from loop.training.split import TEST_FILE

    registry = ModelRegistry(settings.registry_path)
    card = registry.card(version)
    # What the version was trained as; the task's setting for versions whose card says nothing.
    multi_label = bool(card.training_args.get("multi_label", settings.classification.multi_label))
    docs, _ = labelled_rows(data, columns, multi_label)
    if not docs:
        wanted = f"a label set in {columns.labels!r}" if multi_label else f"a {columns.label!r}"
        fail(f"{data}: no document with {wanted} to score {version} on")
    task = settings.trainer.task
    items = [
        agreed(d.id, d.text, task, TEST_FILE, labels=d.labels)
        if multi_label
        else agreed(d.id, d.text, task, TEST_FILE, label=d.label)
        for d in docs
    ]
    test = TestSet.of(items)
    return version_scorer(registry, factory_for(card.kind), test, multi_label)(version)


def _entity_scores(settings: Settings, version: str, data: Path) -> Scores:
    from loop.entities.conll import read_labelled
    from loop.entities.rounds import version_scorer
    from loop.entities.seed import as_labelled
    from loop.evaluation.scoreboard import TestSet
    from loop.registry import ModelRegistry
    from loop.training.split import TEST_FILE
    from workers.train_round import entity_round_config

    registry = ModelRegistry(settings.entity_registry_path)
    card = registry.card(version)
    items = read_labelled(data)
    if not any(item.example.spans for item in items):
        fail(f"{data}: no entity span in it (CoNLL token<TAB>tag, or JSONL spans)")
    if other := sorted({s.label for i in items for s in i.example.spans} - set(card.labels)):
        typer.echo(
            f"note: {version} was not trained on the types {', '.join(other)} of {data}; "
            "their spans count as missed in the type confusion only",
            err=True,
        )
    test = TestSet.of(as_labelled(items, settings.entities.task, TEST_FILE))
    config = entity_round_config(settings)
    return version_scorer(registry, test, config, card.labels)(version)


def _write_rows(rows: Sequence[BaseModel], path: Path) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row.model_dump(mode="json"), ensure_ascii=False) + "\n")
