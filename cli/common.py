"""What every command group shares: settings read from the environment, one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from pydantic import ValidationError

from loop import logs
from loop.errors import ConfigError
from loop.settings import Settings

if TYPE_CHECKING:
    from loop.messages import Document
    from loop.readers import Columns

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
LabelColumn = Annotated[str, typer.Option(help="Field that holds the label.")]
LabelsColumn = Annotated[
    str,
    typer.Option(
        help="Field that holds the label set (multi-label, with "
        "ALLOOP_CLASSIFICATION__MULTI_LABEL=true): a JSON list, or labels joined by '|'."
    ),
]
TextColumn = Annotated[str, typer.Option(help="Field that holds the text.")]
LabelMap = Annotated[
    str | None, typer.Option(help="Rename raw labels, e.g. '0=Bearish,1=Bullish,2=Neutral'.")
]
TrainerModelKind = Annotated[
    str,
    typer.Option(
        help="The trainer's model in the loop's processes: setfit, or keywords for a quick run.",
        envvar="ALLOOP_TRAINER__MODEL_KIND",
    ),
]
TaskOption = Annotated[
    str,
    typer.Option(
        "--task",
        help="classification, or the entity task's name (entities, ALLOOP_ENTITIES__TASK).",
    ),
]


PREFIX = str(Settings.model_config["env_prefix"])
DELIMITER = str(Settings.model_config["env_nested_delimiter"])


def load_settings() -> Settings:
    try:
        settings = Settings()
    except ValidationError as exc:  # one line per setting, naming its variable, never its value
        problems = "; ".join(
            f"{PREFIX}{DELIMITER.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors(include_input=False)
        )
        raise ConfigError(f"invalid settings: {problems}") from None
    logs.configure(settings.log_level, settings.library_log)
    return settings


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def report_scored(metrics: dict[str, Any] | None, size: int, origins: dict[str, int]) -> None:
    """Say how a new version did on the frozen test set (``size`` documents, by origin), or
    that there is no test set yet."""
    if not size:
        typer.echo(
            "no frozen test set yet: the evaluation sample (ALLOOP_SCORER__EVALUATION_FRACTION) "
            "fills it as people label it, or give one with --test"
        )
        return
    f1 = (metrics or {}).get("evaluation", {}).get("macro", {}).get("f1")
    typer.echo(
        f"scored on the frozen test set: {size} documents {origins}, macro-F1 {f1:.3f}"
        if f1 is not None
        else "could not be scored on the test set"
    )


def labelled_rows(path: Path, columns: Columns, multi_label: bool) -> tuple[list[Document], int]:
    """The documents of ``path`` that carry a label (a label set, multi-label), and how many
    lines were rejected (each said on stderr with its line number)."""
    from loop.readers import Rejected, read_documents

    rows, rejected = [], 0
    for item in read_documents(path, columns):
        if isinstance(item, Rejected):
            rejected += 1
            typer.echo(f"rejected {item.source}:{item.line}: {item.reason}", err=True)
        elif (item.labels if multi_label else item.label) is not None:
            rows.append(item)
    return rows, rejected
