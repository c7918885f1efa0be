"""`alloop stack up | status | down` with the real broker binary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from kafka import KafkaAdminClient

from tests.integration.argilla.conftest import VENV
from tests.integration.conftest import ROOT, read_topic

pytestmark = pytest.mark.integration


def alloop(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    variables = {k: v for k, v in os.environ.items() if not k.startswith("ALLOOP_")}
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env={**variables, "ALLOOP_HOME": str(home), "ALLOOP_ARGILLA__VENV": str(VENV), **env},
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )


def test_up_status_down_manage_only_the_processes_they_started(tmp_path: Path) -> None:
    home = tmp_path / "home"
    up = alloop(home, "stack", "up", "--json")
    assert up.returncode == 0, up.stderr
    services = json.loads(up.stdout)
    assert set(services) == {"broker-store", "broker", "redis", "argilla", "argilla-worker"}
    broker = services["broker"]
    try:
        # Argilla answers, with the accounts kept private to the user.
        credentials = home / "stack" / "argilla.json"
        assert oct(credentials.stat().st_mode & 0o777) == "0o600"
        keys = json.loads(credentials.read_text())
        status = httpx.get(
            f"{services['argilla']['url']}/api/v1/me",
            headers={"X-Argilla-Api-Key": keys["annotator_api_key"]},
        )
        assert status.status_code == 200 and status.json()["role"] == "annotator"

        assert broker["running"] is True
        host, _port = broker["address"].split(":")
        assert host == "127.0.0.1"
        admin = KafkaAdminClient(bootstrap_servers=broker["address"])
        admin.close()

        again = alloop(home, "stack", "up", "--json")
        assert json.loads(again.stdout)["broker"]["pid"] == broker["pid"], (
            "up started a second broker"
        )

        status = json.loads(alloop(home, "stack", "status", "--json").stdout)
        assert status["broker"]["address"] == broker["address"]
        # Other commands find the broker through the state folder, without flags.
        ingest = alloop(home, "ingest", str(tmp_path / "missing.csv"))
        assert ingest.returncode == 2 and "no such file" in ingest.stderr
        data = tmp_path / "docs.jsonl"
        data.write_text('{"text": "hello"}\n{"id": 3}\n')
        ingest = alloop(home, "ingest", str(data), "--no-progress")
        assert ingest.returncode == 1
        assert "published 1 documents" in ingest.stdout
        assert f"{data}:2" in ingest.stderr
    finally:
        down = alloop(home, "stack", "down")
    assert down.returncode == 0
    assert {"broker-store", "broker", "redis", "argilla", "argilla-worker"} <= set(
        down.stdout.split(": ")[1].strip().split(", ")
    )
    assert not any(_alive(s["pid"]) for s in services.values())
    assert not Path(f"/proc/{broker['pid']}").exists() or _zombie(broker["pid"])
    assert json.loads(alloop(home, "stack", "status", "--json").stdout) == {}

    # The broker comes back on its address with what it held: the ingested document.
    again = alloop(home, "stack", "up", "--json", "--no-argilla")
    try:
        assert again.returncode == 0, again.stderr
        back = json.loads(again.stdout)["broker"]
        assert back["address"] == broker["address"] and back["pid"] != broker["pid"]
        kept = read_topic(back["address"], "docs.raw", lambda rs: len(rs) >= 1, timeout=60)
        assert [json.loads(r.value)["text"] for r in kept] == ["hello"]
    finally:
        alloop(home, "stack", "down")


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() and not _zombie(pid)


def _zombie(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] == "Z"


def test_an_external_broker_setting_wins_over_the_local_stack(tmp_path: Path, broker: str) -> None:
    home = tmp_path / "home"
    up = alloop(
        home,
        "stack",
        "up",
        ALLOOP_KAFKA__BOOTSTRAP_SERVERS=broker,
        ALLOOP_ARGILLA__URL="http://argilla.example:6900",
    )
    assert up.returncode == 0 and "starts none" in up.stderr
    assert json.loads(alloop(home, "stack", "status", "--json").stdout) == {}
    data = tmp_path / "docs.jsonl"
    data.write_text('{"id": "x1", "text": "hello external broker"}\n')
    ingest = alloop(
        home,
        "ingest",
        str(data),
        "--no-progress",
        ALLOOP_KAFKA__BOOTSTRAP_SERVERS=broker,
        ALLOOP_KAFKA__TOPICS__RAW="external.docs.raw",
    )
    assert ingest.returncode == 0, ingest.stderr
    admin = KafkaAdminClient(bootstrap_servers=broker)
    try:
        assert "external.docs.raw" in admin.list_topics()
    finally:
        admin.close()


def test_commands_without_a_broker_say_how_to_get_one(tmp_path: Path) -> None:
    data = tmp_path / "docs.jsonl"
    data.write_text('{"text": "hello"}\n')
    result = alloop(tmp_path / "home", "ingest", str(data))
    assert result.returncode == 2
    assert "alloop stack up" in result.stderr
    assert "Traceback" not in result.stderr
