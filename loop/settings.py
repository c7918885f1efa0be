"""All of alloop's deployment settings, read from ``ALLOOP_*`` environment variables.

Nested sections use a double underscore: ``ALLOOP_KAFKA__BOOTSTRAP_SERVERS``,
``ALLOOP_API__KEYS``. Only entry points (the CLI, the API factory) build a :class:`Settings`;
library code takes explicit arguments. docs/configuration.md lists every variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _default_home() -> Path:
    return Path.home() / ".alloop"


class Topics(BaseModel):
    """Topic names. The defaults make the flow readable from a topic listing."""

    raw: str = "docs.raw"
    tagged: str = "docs.tagged"
    candidates: str = "candidates"
    labels: str = "labels"
    models: str = "models"
    partitions: int = Field(default=3, ge=1, description="Partitions for topics alloop creates")

    @staticmethod
    def dlq(topic: str) -> str:
        """The dead-letter topic of ``topic``."""
        return f"{topic}.dlq"


class KafkaSettings(BaseModel):
    """Where the broker is. Empty ``bootstrap_servers`` means: the local stack's broker."""

    bootstrap_servers: str = ""
    client_id: str = "alloop"
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 2_000
    request_timeout_ms: int = 30_000
    topics: Topics = Topics()


class ScorerSettings(BaseModel):
    """The scorer worker."""

    group_id: str = "alloop-scorer"
    batch_size: int = Field(default=64, ge=1, le=4096)
    max_wait_ms: int = Field(default=500, ge=1)
    reload_check_s: float = Field(default=2.0, gt=0)


class ApiSettings(BaseModel):
    """The HTTP API."""

    host: str = "127.0.0.1"
    port: int = 8000
    keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    max_batch: int = Field(default=256, ge=1)
    max_text_chars: int = Field(default=20_000, ge=1)
    max_body_bytes: int = Field(default=2_000_000, ge=1)
    reload_check_s: float = Field(default=2.0, gt=0)

    @field_validator("keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value


class Settings(BaseSettings):
    """The whole configuration of one alloop process."""

    model_config = SettingsConfigDict(
        env_prefix="ALLOOP_", env_nested_delimiter="__", extra="ignore"
    )

    home: Path = Field(default_factory=_default_home)
    registry_dir: Path | None = None
    log_level: str = "INFO"
    kafka: KafkaSettings = KafkaSettings()
    scorer: ScorerSettings = ScorerSettings()
    api: ApiSettings = ApiSettings()

    @property
    def state_dir(self) -> Path:
        """Where the local stack records what it started."""
        return self.home / "stack"

    @property
    def registry_path(self) -> Path:
        return self.registry_dir or self.home / "registry"
