"""The ``alloop`` options that are settings read their ``ALLOOP_*`` variable, and every
variable an option names is a real setting (docs/configuration.md)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer
from pydantic import BaseModel
from typer.testing import CliRunner

from cli.main import app
from loop.settings import Settings

SETTING_OPTIONS = {
    ("api", "--host"): "ALLOOP_API__HOST",
    ("api", "--port"): "ALLOOP_API__PORT",
    ("drift check", "--alpha"): "ALLOOP_DRIFT__ALPHA",
    ("bench drift", "--window"): "ALLOOP_DRIFT__WINDOW_SIZE",
    ("bench drift", "--reference-windows"): "ALLOOP_DRIFT__REFERENCE_WINDOWS",
    ("bench throughput", "--batch-size"): "ALLOOP_SCORER__BATCH_SIZE",
    ("bench throughput", "--threads"): "ALLOOP_SCORER__THREADS",
    ("bench chaos", "--model-kind"): "ALLOOP_TRAINER__MODEL_KIND",
    ("bench learning-curve", "--model-kind"): "ALLOOP_TRAINER__MODEL_KIND",
}


def options(command: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every option of the command tree, with the command's path (``bench chaos``). Typer
    carries its own click, so the tree is read by its attributes."""
    for name, sub in getattr(command, "commands", {}).items():
        yield from options(sub, f"{path} {name}".strip())
    for param in command.params:
        if param.param_type_name == "option":
            yield path, param


def is_setting(variable: str) -> bool:
    """Whether ``ALLOOP_A__B`` names field ``b`` of section ``a`` of :class:`Settings`."""
    model: type[BaseModel] | None = Settings
    for part in variable.removeprefix("ALLOOP_").lower().split("__"):
        if model is None or part not in model.model_fields:
            return False
        kind = model.model_fields[part].annotation
        model = kind if isinstance(kind, type) and issubclass(kind, BaseModel) else None
    return variable.startswith("ALLOOP_")


def test_options_that_are_settings_read_their_variable() -> None:
    found = {
        (path, option.opts[0]): option.envvar
        for path, option in options(typer.main.get_command(app))
        if (path, option.opts[0]) in SETTING_OPTIONS
    }
    assert found == SETTING_OPTIONS


@pytest.mark.parametrize(
    "variable", sorted({str(o.envvar) for _, o in options(typer.main.get_command(app)) if o.envvar})
)
def test_every_variable_an_option_reads_is_a_setting(variable: str) -> None:
    assert is_setting(variable)


def test_the_check_knows_a_setting_from_a_typo() -> None:
    assert is_setting("ALLOOP_KAFKA__TOPICS__RAW")
    assert not is_setting("ALLOOP_KAFKA__TOPIC__RAW")
    assert not is_setting("ALLOOP_SCORER__BATCH_SIZE__X")


def test_an_option_takes_its_variable_when_not_given() -> None:
    result = CliRunner().invoke(
        app, ["bench", "throughput", "--documents", "1"], env={"ALLOOP_SCORER__BATCH_SIZE": "x"}
    )
    assert result.exit_code == 2
    assert "ALLOOP_SCORER__BATCH_SIZE" in result.output
