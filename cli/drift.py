"""``alloop drift``: is the stream still what the served version was trained for?
``check`` compares two files; ``status`` shows what the scorer's monitor reported
(docs/drift.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.common import JsonOption, fail, load_settings

if TYPE_CHECKING:
    from loop.classification.base import Classifier
    from loop.drift.base import Window
    from loop.drift.report import DriftReport
    from loop.drift.texts import Encoder
    from loop.readers import Columns

drift_app = typer.Typer(
    help="Drift after deployment: compare two files (check), or read the scorer's monitor "
    "(status). Every figure, its threshold and what to do when it fires: docs/drift.md.",
    no_args_is_help=True,
)

NO_MODEL = "none"


def _documents(path: Path, columns: Columns) -> tuple[list[str], list[str | None]]:
    from loop.readers import Rejected, read_documents

    texts: list[str] = []
    gold: list[str | None] = []
    rejected = 0
    for item in read_documents(path, columns):
        if isinstance(item, Rejected):
            rejected += 1
            continue
        texts.append(item.text)
        gold.append(item.label)
    if rejected:
        typer.echo(f"{path}: skipped {rejected} malformed rows", err=True)
    if not texts:
        fail(f"{path}: no documents")
    return texts, gold


def _classifier(model: str | None) -> tuple[str | None, Classifier | None]:
    """The version to score with (the promoted one unless ``model`` names one, or none)."""
    from loop.classification.factories import load_version
    from loop.registry import ModelRegistry

    if model == NO_MODEL:
        return None, None
    registry = ModelRegistry(load_settings().registry_path)
    version = model or registry.promoted()
    if version is None:
        return None, None
    return version, load_version(registry, version)


def _window(
    path: Path,
    columns: Columns,
    classifier: Classifier | None,
    encoder: Encoder | None,
    batch_size: int,
    progress: bool,
) -> Window:
    from tqdm import tqdm

    from loop.drift.texts import window_of_texts

    texts, gold = _documents(path, columns)
    with tqdm(
        total=len(texts), unit=" docs", desc=path.name, disable=not progress, file=sys.stderr
    ) as bar:
        return window_of_texts(texts, gold, classifier, encoder, batch_size, bar.update)


def _echo_report(report: DriftReport, title: str) -> None:
    verdict = "DRIFT" if report.drift else "no drift"
    typer.echo(f"{title}: {verdict} ({report.documents} documents)")
    for r in report.results:
        side = ">" if r.direction == "above" else "<"
        mark = "  crossed" if r.crossed else ""
        reference = "" if r.reference is None else f", reference {r.reference}"
        typer.echo(
            f"  {r.method:20} {r.score:8.4f}  threshold {side} {r.threshold:.4f}{reference}{mark}"
        )


@drift_app.command("check")
def drift_check(
    reference: Annotated[
        Path, typer.Option(help="Documents the model knows (.jsonl, .csv or a folder of .txt).")
    ],
    current: Annotated[Path, typer.Option(help="Documents to compare with them (same formats).")],
    model: Annotated[
        str | None,
        typer.Option(
            help="The version whose body embeds and whose head scores the documents (default: "
            f"the promoted one; `{NO_MODEL}`: the packaged encoder, embedding drift only)."
        ),
    ] = None,
    window: Annotated[
        int | None,
        typer.Option(help="Cut --current into windows of this many documents, one report each."),
    ] = None,
    text_column: Annotated[str, typer.Option(help="Field that holds the text.")] = "text",
    label_column: Annotated[
        str,
        typer.Option(help="Field that holds a known label (then the measured macro-F1 too)."),
    ] = "label",
    label_map: Annotated[
        str | None, typer.Option(help="Rename raw labels, e.g. '0=Bearish,1=Bullish,2=Neutral'.")
    ] = None,
    alpha: Annotated[
        float | None,
        typer.Option(help="False alarms per window without drift.", envvar="ALLOOP_DRIFT__ALPHA"),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Documents per model call.")] = 64,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    fail_on_drift: Annotated[
        bool, typer.Option(help="Exit with code 1 when drift is found (for CI or cron).")
    ] = False,
) -> None:
    """Compare --current with --reference: embedding drift (a domain classifier's ROC AUC),
    and with a model the predicted-label mix, the drop in mean confidence and the estimated
    macro-F1 (the measured one too when both files carry labels).

    Every figure is printed with its threshold; the last line is a JSON object with "drift"
    (true or false) and each method's score, threshold and whether it crossed.
    """
    from dataclasses import replace

    from loop.drift.monitor import config_of
    from loop.drift.report import check
    from loop.drift.texts import part
    from loop.embeddings.backbone import PackagedEncoder
    from loop.readers import Columns, parse_label_map

    settings = load_settings()
    config = config_of(settings.drift)
    if alpha is not None:
        if not 0 < alpha < 1:
            fail("--alpha must be between 0 and 1")
        config = replace(config, alpha=alpha)
    if window is not None and window < 20:
        fail("--window must be at least 20 documents")
    columns = Columns(text=text_column, label=label_column, label_names=parse_label_map(label_map))
    version, classifier = _classifier(model)
    typer.echo(
        f"scoring with {version}" if version else "no model: packaged encoder, embedding drift only"
    )
    # The classifier's body embeds when it has one (as in the scorer), else the packaged MiniLM.
    encoder = None if hasattr(classifier, "predict_with_embeddings") else PackagedEncoder()
    before = _window(reference, columns, classifier, encoder, batch_size, progress)
    after = _window(current, columns, classifier, encoder, batch_size, progress)
    size = window or after.size
    cache: dict[tuple[int, int], tuple[float, float]] = {}
    reports = []
    for number, start in enumerate(range(0, after.size, size), start=1):
        rows = list(range(start, min(start + size, after.size)))
        if len(rows) < min(size, 20):
            break  # a short tail says little
        report = check(
            config.methods(null_cache=cache),
            before,
            part(after, rows) if window else after,
            config,
            window=number,
            model_version=version,
        )
        reports.append(report)
        _echo_report(report, f"window {number}" if window else str(current))
    final: dict[str, object] = {
        "drift": any(r.drift for r in reports),
        "model_version": version,
        "reference_documents": before.size,
    }
    if window:
        final["windows"] = [r.summary() for r in reports]
        final["first_drift_window"] = next((r.window for r in reports if r.drift), None)
    else:
        final.update(reports[0].summary())
    typer.echo(json.dumps(final))
    if fail_on_drift and final["drift"]:
        raise typer.Exit(1)


@drift_app.command("status")
def drift_status(
    last: Annotated[int, typer.Option(help="Windows to show, the newest last.")] = 10,
    as_json: JsonOption = False,
) -> None:
    """What the scorer's drift monitor reported on its latest windows
    ($ALLOOP_HOME/drift/drift.db)."""
    from loop.drift.store import DriftStore

    settings = load_settings()
    if not settings.drift_path.exists():
        fail(
            f"no drift reports in {settings.drift_path} yet: the scorer writes one per "
            f"{settings.drift.window_size} documents after {settings.drift.reference_windows} "
            "reference windows (ALLOOP_DRIFT__ENABLED)",
            code=1,
        )
    store = DriftStore(settings.drift_path)
    try:
        reports = store.history(last=last)
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in reports], indent=2))
        return
    for report in reports:
        _echo_report(
            report,
            f"window {report.window} at {report.at:%Y-%m-%d %H:%M:%S} "
            f"({report.model_version or 'no model'})",
        )
    latest = reports[-1] if reports else None
    typer.echo(
        json.dumps(
            {
                "drift": bool(latest and latest.drift),
                "windows": len(reports),
                "latest": latest.summary() if latest else None,
            }
        )
    )
