"""All of alloop's deployment settings, read from ``ALLOOP_*`` environment variables.

Nested sections use a double underscore: ``ALLOOP_KAFKA__BOOTSTRAP_SERVERS``,
``ALLOOP_API__KEYS``. Only entry points (the CLI, the API factory) build a :class:`Settings`;
library code takes explicit arguments. docs/configuration.md lists every variable.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from loop.embeddings.precision import Precision
from loop.entities.merge import MergeRule
from loop.errors import ConfigError


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
    max_request_size: int = Field(
        default=1_048_576, ge=1024, description="Largest message the producers send (bytes)"
    )
    model_events: bool = Field(
        default=True,
        description="Scorers and the API reload at once when the models topic announces a "
        "promotion or rollback (the registry poll stays as the fallback)",
    )
    commit_delay_s: float = Field(
        default=0.0,
        ge=0,
        description="Fault injection only: hold each commit this long after the batch's "
        "outputs were acknowledged (a kill in that gap replays the batch)",
    )
    topics: Topics = Topics()


class ScorerSettings(BaseModel):
    """The scorer worker."""

    group_id: str = "alloop-scorer"
    batch_size: int = Field(default=64, ge=1, le=4096)
    max_wait_ms: int = Field(default=500, ge=1)
    reload_check_s: float = Field(default=2.0, gt=0)
    candidates: bool = True
    strategy: str = Field(
        default="breaking-ties", description="Selection: see loop.classification.selection"
    )
    window_size: int = Field(default=2000, ge=1)
    round_size: int = Field(default=500, ge=1)
    candidates_per_round: int = Field(default=20, ge=1)
    random_fraction: float = Field(default=0.1, ge=0, le=1)
    select_with_newest: bool = Field(
        default=True,
        description="Rank selection rounds with the newest version, promoted or not",
    )
    cold_start_embeddings: bool = Field(
        default=True,
        description="Before any model serves, embed the window with the packaged encoder "
        "for representative picks",
    )
    evaluation_fraction: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="Share of the stream drawn (by a hash of the id) for the evaluation "
        "sample: the documents people label for the frozen test set",
    )
    seed_keywords: dict[str, list[str]] = Field(default_factory=dict)
    threads: int = Field(
        default=0,
        ge=0,
        le=256,
        description="torch threads per scorer process; 0: torch's default, one per core",
    )


class DriftSettings(BaseModel):
    """The scorer's drift monitor (docs/drift.md)."""

    enabled: bool = Field(
        default=False,
        description="Report drift per window of tagged documents (off by default for now)",
    )
    window_size: int = Field(default=200, ge=20, description="Documents per drift window")
    reference_windows: int = Field(
        default=2, ge=1, description="Windows after a promotion that become the reference"
    )
    alpha: float = Field(
        default=0.01, gt=0, lt=1, description="False alarms per window that did not drift"
    )
    permutations: int = Field(default=2000, ge=100, description="Draws of each threshold")
    min_auc: float = Field(default=0.55, ge=0.5, le=1, description="Embedding AUC never below")
    min_label_mix: float = Field(default=0.05, ge=0, le=1, description="Jensen-Shannon distance")
    min_confidence_drop: float = Field(default=0.02, ge=0, le=1)
    min_f1_drop: float = Field(default=0.03, ge=0, le=1, description="Macro-F1, both kinds")
    min_unseen_rise: float = Field(default=0.05, ge=0, le=1, description="Unseen mention share")
    selection_share: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="While drifted: share of each selection round given to the documents "
        "farthest from the reference (reason drift)",
    )


class TrainerSettings(BaseModel):
    """The trainer worker: when to retrain, how to split, when to promote."""

    group_id: str = "alloop-trainer"
    min_new_labels: int = Field(default=20, ge=1, description="New labels that start a round")
    max_wait_s: float = Field(default=300.0, gt=0, description="Longest a new label waits")
    check_interval_s: float = Field(
        default=60.0, gt=0, description="How often stored answers no round covered are counted"
    )
    full_finetune_every: int = Field(default=5, ge=0, description="0: always head-only")
    max_macro_f1_drop: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="Gate: how far below zero the lower end of the macro-F1 delta's "
        "interval may reach",
    )
    max_label_f1_drop: float = Field(default=0.1, ge=0, le=1)
    min_test_size: int = Field(
        default=30, ge=1, description="Gate: test documents needed before any promotion"
    )
    min_label_support: int = Field(
        default=10,
        ge=1,
        description="Gate: test documents a label needs before its F1 can block a promotion",
    )
    gate_confidence: float = Field(
        default=0.9, gt=0.5, lt=1, description="Gate: confidence of the bootstrap interval"
    )
    task: str = "classification"
    model_kind: str = Field(default="setfit", description="setfit, or keywords for tests")
    num_iterations: int = Field(default=5, ge=1, description="SetFit pairs per example")
    head_c: float = Field(
        default=4.0, gt=0, description="Inverse regularisation of the classifier's head"
    )


class ClassificationSettings(BaseModel):
    """The classification task: one label per document, or a set of labels."""

    multi_label: bool = Field(
        default=False,
        description="Several labels (or none) may apply to one document: a multi-label "
        "question in Argilla and a one-vs-rest model",
    )


class EntitySettings(BaseModel):
    """The entity task: tagging, selection and training of the entity extractor."""

    enabled: bool = Field(default=False, description="Tag entities and route them to people")
    task: str = Field(default="entities", description="Task name (Argilla dataset suffix)")
    types: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["STOCK", "CRYPTO", "FOREX"]
    )
    patterns: bool = Field(default=True, description="Financial patterns: cold start, unseen")
    gazetteers: Path | None = Field(default=None, description="JSON gazetteers for the patterns")
    merge: MergeRule = Field(
        default=MergeRule.GAZETTEER_FIRST,
        description="How served tags combine the version's spans and the pattern matches",
    )
    model_kind: str = Field(default="minilm-tagger", description="minilm-tagger or spacy-ner")
    candidates_per_round: int = Field(default=10, ge=0)
    uncertain_below: float = Field(default=0.8, gt=0, le=1, description="Span score to doubt")
    rare_below: int = Field(default=5, ge=0, description="Labelled spans that make a type rare")
    epochs: int = Field(default=10, ge=1)
    time_budget_s: float | None = Field(default=240.0, gt=0)
    quantize: bool = Field(default=False, description="Tag with int8 linear layers (faster)")
    min_new_labels: int = Field(default=10, ge=1, description="New answers that start a round")

    @field_validator("types", mode="before")
    @classmethod
    def _split_types(cls, value: object) -> object:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value


class RetrySettings(BaseModel):
    """How workers wait out a broker or Argilla outage: exponential backoff with a cap."""

    initial_s: float = Field(default=0.5, gt=0, description="First wait after a failed try")
    max_s: float = Field(default=30.0, gt=0, description="Longest wait between two tries")
    factor: float = Field(default=2.0, ge=1, description="Each wait is the last times this")


class StackSettings(BaseModel):
    """The local stack (`alloop stack up`, the demo)."""

    broker_storage: Literal["disk", "memory"] = Field(
        default="disk",
        description="disk: the broker keeps topics, records and committed offsets in "
        "<home>/stack/broker-data across restarts; memory: it loses them (faster, for tests)",
    )


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


WEBHOOK_SECRET_PREFIX = "whsec_"
MIN_WEBHOOK_KEY_BYTES = 16


def check_webhook_secret(secret: str) -> str:
    """``secret`` if it is a Standard Webhooks secret (base64 of at least 16 bytes, optionally
    prefixed ``whsec_``); a ValueError saying what is wrong otherwise (never the secret)."""
    encoded = secret.removeprefix(WEBHOOK_SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            "the webhook secret is not base64 (a Standard Webhooks secret, as Argilla returns "
            "it, optionally prefixed whsec_)"
        ) from None
    if len(key) < MIN_WEBHOOK_KEY_BYTES:
        raise ValueError(
            f"the webhook secret decodes to {len(key)} bytes, fewer than "
            f"{MIN_WEBHOOK_KEY_BYTES}: use the secret Argilla returned (64 bytes)"
        )
    return secret


class ArgillaSettings(BaseModel):
    """The labeling side. Empty ``url`` means: the local stack's Argilla."""

    url: str = ""
    api_key: SecretStr | None = None
    annotator_api_key: SecretStr | None = None
    workspace: str = "alloop"
    dataset_prefix: str = "alloop"
    webhook_secret: SecretStr | None = None
    min_submitted: int = Field(default=1, ge=1, description="Answers a record needs to count")
    min_agreement: float = Field(default=0.5, gt=0, le=1)
    poll_interval_s: float = Field(default=60.0, gt=0)
    timeout_s: float = Field(
        default=60.0, gt=0, description="How long the labeler waits for one Argilla request"
    )
    poll_grace_s: float = Field(default=30.0, ge=0, description="Leave newer answers to webhooks")
    budget: int = Field(default=500, ge=1, description="Records pending in Argilla at most")
    labels: Annotated[list[str], NoDecode] = Field(default_factory=list)
    labeler_group_id: str = "alloop-labeler"
    venv: Path | None = None
    database_url: str | None = None
    job_workers: int = Field(
        default=2, ge=1, le=16, description="Local Argilla: worker processes sending webhooks"
    )

    @field_validator("labels", mode="before")
    @classmethod
    def _split_labels(cls, value: object) -> object:
        if isinstance(value, str):
            return [label.strip() for label in value.split(",") if label.strip()]
        return value

    @field_validator("webhook_secret", mode="before")
    @classmethod
    def _usable_secret(cls, value: object) -> object:
        """Refuse a secret no delivery should be trusted with; ``off`` means none."""
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not isinstance(text, str):
            return value
        text = text.strip()
        if not text:
            raise ValueError(
                "the webhook secret is empty: set it to the secret Argilla returned when "
                "alloop's webhook was registered, or to `off` to refuse every delivery"
            )
        if text.lower() == "off":
            return None
        return SecretStr(check_webhook_secret(text))


class Settings(BaseSettings):
    """The whole configuration of one alloop process."""

    model_config = SettingsConfigDict(
        env_prefix="ALLOOP_", env_nested_delimiter="__", extra="ignore"
    )

    home: Path = Field(default_factory=_default_home)
    registry_dir: Path | None = None
    log_level: str = "INFO"
    precision: Precision = Field(
        default=Precision.AUTO,
        description="What the scorer and the API run the encoders in: auto (int8 where the "
        "CPU has VNNI, else bfloat16 where it has that in hardware, else float32), float32, "
        "bfloat16 or int8",
    )
    kafka: KafkaSettings = KafkaSettings()
    scorer: ScorerSettings = ScorerSettings()
    drift: DriftSettings = DriftSettings()
    api: ApiSettings = ApiSettings()
    argilla: ArgillaSettings = ArgillaSettings()
    trainer: TrainerSettings = TrainerSettings()
    classification: ClassificationSettings = ClassificationSettings()
    entities: EntitySettings = EntitySettings()
    retry: RetrySettings = RetrySettings()
    stack: StackSettings = StackSettings()

    @property
    def state_dir(self) -> Path:
        """Where the local stack records what it started."""
        return self.home / "stack"

    @property
    def library_log(self) -> Path:
        """Where the libraries' log lines, warnings and progress bars go (loop/logs.py)."""
        return self.home / "logs" / "libraries.log"

    @property
    def argilla_venv(self) -> Path:
        """Argilla's own virtualenv for the local stack."""
        return self.argilla.venv or self.home / "argilla-venv"

    @property
    def labels_path(self) -> Path:
        """The label store: every answer people gave, and the webhook deliveries the API
        processed (SQLite; a ``labels.jsonl`` beside it is imported the first time)."""
        return self.home / "labels" / "labels.db"

    @property
    def drift_path(self) -> Path:
        """The drift reports of the scorer's windows (SQLite)."""
        return self.home / "drift" / "drift.db"

    @property
    def drift_references_path(self) -> Path:
        """The drift monitor's reference windows, one file per served version."""
        return self.home / "drift" / "references"

    @property
    def registry_path(self) -> Path:
        return self.registry_dir or self.home / "registry"

    @property
    def entity_tasks(self) -> tuple[str, ...]:
        """Tasks whose Argilla datasets ask for entity spans."""
        return (self.entities.task,) if self.entities.enabled else ()

    @property
    def entity_registry_path(self) -> Path:
        """The entity extractor's versions: a registry of their own beside the classifier's."""
        return self.registry_path / "entities"

    def is_entity_task(self, task: str) -> bool:
        """Whether ``task`` names the entity task (``classification`` or the classifier's
        task name: False); a :class:`~loop.errors.ConfigError` for any other name."""
        if task == self.entities.task:
            return True
        if task in ("classification", self.trainer.task):
            return False
        raise ConfigError(f"unknown task {task!r}: choose classification or {self.entities.task}")

    def task_registry_path(self, task: str) -> Path:
        """The registry of ``task``: the classifier's, or the entity extractor's."""
        return self.entity_registry_path if self.is_entity_task(task) else self.registry_path

    def label_task(self, task: str) -> str:
        """The name ``task``'s answers carry in the label store."""
        return self.entities.task if self.is_entity_task(task) else self.trainer.task
