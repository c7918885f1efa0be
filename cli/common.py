"""What every command group shares: settings read from the environment, one-line errors."""

from __future__ import annotations

from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError

from loop import logs
from loop.errors import ConfigError
from loop.settings import Settings

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


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
