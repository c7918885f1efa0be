"""``alloop labels``: the labels people gave, out of the label store."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.common import TaskOption, fail, load_settings
from loop.exports import Format

labels_app = typer.Typer(help="Take the labels out of the label store.", no_args_is_help=True)


@labels_app.command("export")
def labels_export(
    form: Annotated[
        Format,
        typer.Option(
            "--format",
            help="jsonl, csv, or conll (entity tasks: `token<TAB>tag` in BIO).",
            case_sensitive=False,
        ),
    ] = Format.JSONL,
    task: TaskOption = "classification",
    out: Annotated[
        Path | None, typer.Option("--out", help="Write here instead of standard output.")
    ] = None,
    origin: Annotated[
        list[str] | None,
        typer.Option(
            help="Only documents chosen for this reason (repeat for several): evaluation, "
            "uncertain, rare, unseen, random, cold-start, seed, test-file."
        ),
    ] = None,
) -> None:
    """Export the agreed labels of a task with their agreement and origin.

    One record per document that people (or a seed or test file) agreed on: its id, text,
    label (label set, or entity spans), agreement (the share of annotators who gave that
    answer), number of answers, the time of the newest, and its origin: why it was chosen
    (evaluation: the uniform sample behind the frozen test set; uncertain, rare, unseen,
    random, cold-start: picked by the selection; seed, test-file: from files). Documents still
    waiting for answers, discarded or disputed are left out. The export reads back as a seed
    file: alloop train --data FILE (--task entities for spans)."""
    from loop.exports import export
    from loop.labels import LabelStore

    settings = load_settings()
    task_name = settings.label_task(task)
    if form is Format.CONLL and not settings.is_entity_task(task):
        fail("conll holds entity tags: export classification labels as jsonl or csv")
    if not settings.labels_path.is_file():
        fail(f"no label store at {settings.labels_path} (ALLOOP_HOME): nothing was labelled")
    store = LabelStore(
        settings.labels_path, settings.argilla.min_submitted, settings.argilla.min_agreement
    )
    items = store.labelled(task_name)
    if origin:
        items = [item for item in items if (item.origin or "unknown") in origin]
    if out is None:
        count = export(items, form, sys.stdout)
    else:
        with out.open("w", encoding="utf-8", newline="") as handle:
            count = export(items, form, handle)
    typer.echo(
        f"exported {count} {task_name} label(s) as {form.value}"
        + (f" to {out}" if out is not None else ""),
        err=True,
    )
