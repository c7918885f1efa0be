"""Settings come from ALLOOP_* environment variables, with nested sections."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from loop.settings import Settings, Topics


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("ALLOOP_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_defaults(tmp_path: Path) -> None:
    settings = Settings()
    assert settings.kafka.bootstrap_servers == ""
    assert settings.kafka.topics.raw == "docs.raw"
    assert settings.kafka.topics.tagged == "docs.tagged"
    assert settings.api.keys == []
    assert settings.home == tmp_path / "home" / ".alloop"
    assert settings.registry_path == tmp_path / "home" / ".alloop" / "registry"


def test_kafka_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOOP_KAFKA__BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("ALLOOP_KAFKA__TOPICS__RAW", "feed.in")
    monkeypatch.setenv("ALLOOP_KAFKA__TOPICS__PARTITIONS", "6")
    settings = Settings()
    assert settings.kafka.bootstrap_servers == "k1:9092,k2:9092"
    assert settings.kafka.topics.raw == "feed.in"
    assert settings.kafka.topics.partitions == 6
    assert settings.kafka.topics.tagged == "docs.tagged"  # untouched siblings keep defaults
    assert Topics.dlq(settings.kafka.topics.raw) == "feed.in.dlq"


def test_api_keys_are_split_and_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOOP_API__KEYS", "alpha-key, beta-key,,")
    settings = Settings()
    assert all(isinstance(key, SecretStr) for key in settings.api.keys)
    assert [key.get_secret_value() for key in settings.api.keys] == ["alpha-key", "beta-key"]
    for shown in (repr(settings), str(settings), repr(settings.api), settings.model_dump_json()):
        assert "alpha-key" not in shown and "beta-key" not in shown


def test_one_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOOP_API__KEYS", "only")
    assert [k.get_secret_value() for k in Settings().api.keys] == ["only"]


def test_home_decides_registry_and_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ALLOOP_HOME", str(tmp_path / "alloop"))
    settings = Settings()
    assert settings.home == tmp_path / "alloop"
    assert settings.registry_path == tmp_path / "alloop" / "registry"
    assert settings.state_dir == tmp_path / "alloop" / "stack"


def test_registry_dir_overrides_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ALLOOP_HOME", str(tmp_path / "alloop"))
    monkeypatch.setenv("ALLOOP_REGISTRY_DIR", str(tmp_path / "shared-registry"))
    settings = Settings()
    assert settings.registry_path == tmp_path / "shared-registry"
    assert settings.state_dir == tmp_path / "alloop" / "stack"


def test_names_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("alloop_kafka__topics__raw", "lower.raw")
    assert Settings().kafka.topics.raw == "lower.raw"


def test_out_of_range_value_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOOP_SCORER__BATCH_SIZE", "0")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert caught.value.errors()[0]["loc"] == ("scorer", "batch_size")
