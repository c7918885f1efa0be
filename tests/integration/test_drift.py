"""Drift through the real pieces: a scorer process on the real broker with a real SetFit
version sees the stream switch from financial tweets to banking questions, announces a
``drift`` event on the models topic, and the API's /v1/drift and ``alloop drift status`` show
it; ``alloop drift check`` tells two files apart with the same model."""

from __future__ import annotations

import csv
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from loop.drift.references import load_reference
from loop.drift.store import DriftStore
from loop.messages import Document, ModelEvent, TaggedDocument, decode
from loop.registry import ModelRegistry
from loop.settings import Settings
from tests.conftest import DATASETS, tweets
from tests.integration.conftest import Env, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WINDOW = 40
STARTUP = 300
"""Seconds a scorer may take to load the SetFit version and join its group (over 90 s on a
loaded 2-core machine)."""


@pytest.fixture(scope="module")
def head_only_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real head-only SetFit version (the packaged MiniLM body, a logistic head fitted on
    16 tweets per label): the body the scorer embeds with is the one the drift reference
    needs, and no fine-tune is needed to see drift (it took over 600 s on a loaded machine)."""
    from loop.classification.base import ClassifierConfig
    from loop.classification.setfit import SetFitFactory
    from loop.training.seed import train_and_publish

    root = tmp_path_factory.mktemp("head-only-registry")
    registry = ModelRegistry(root)
    config = ClassifierConfig(freeze_body=True)
    train_and_publish(tweets(per_label=16), SetFitFactory(), registry, config, promote=True)
    return root


@pytest.fixture
def setfit_registry(head_only_dir: Path, tmp_path: Path) -> ModelRegistry:
    root = tmp_path / "registry"
    shutil.copytree(head_only_dir, root)
    return ModelRegistry(root)


def banking(limit: int) -> list[Document]:
    with (DATASETS / "banking77" / "test.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    step = len(rows) // limit  # across the intents, not the first one only
    return [Document(id=f"bank-{i}", text=rows[i * step]["text"]) for i in range(limit)]


def drift_vars() -> dict[str, str]:
    return {
        "ALLOOP_DRIFT__ENABLED": "true",
        "ALLOOP_DRIFT__WINDOW_SIZE": str(WINDOW),
        "ALLOOP_DRIFT__REFERENCE_WINDOWS": "2",
        "ALLOOP_DRIFT__PERMUTATIONS": "500",
        "ALLOOP_SCORER__CANDIDATES": "false",
    }


def test_a_switch_of_source_is_announced_and_shown_by_the_api(
    env: Env, setfit_registry: ModelRegistry, workers
) -> None:
    env.registry = setfit_registry.root
    stream = tweets("valid", limit=4 * WINDOW) + banking(2 * WINDOW)
    scorer = workers(["worker", "scorer", "--worker-id", "s1"], "scorer", **drift_vars())
    scorer.start().wait_for("assigned partitions", timeout=STARTUP)
    env.produce(stream)
    wanted = {d.id for d in stream}
    tagged = read_topic(
        env.broker,
        env.tagged,
        lambda rs: {decode(r.value, TaggedDocument).id for r in rs} >= wanted,
        timeout=600,
    )
    assert {decode(r.value, TaggedDocument).id for r in tagged} >= wanted
    events = [
        decode(r.value, ModelEvent)
        for r in read_topic(
            env.broker,
            f"{env.prefix}.models",
            lambda rs: any(decode(r.value, ModelEvent).event == "drift" for r in rs),
            timeout=120,
        )
    ]
    drift = [e for e in events if e.event == "drift"]
    assert drift, f"no drift event; scorer log:\n{scorer.text()[-3000:]}"
    event = drift[0]
    assert event.version == "v0001" and event.drift is not None
    assert "embedding-auc" in event.drift["crossed"]
    assert event.drift["embedding-auc"]["score"] > event.drift["embedding-auc"]["threshold"]

    # The partitions interleave the two sources, so the windows that hold banking questions
    # drift and the tweet-only windows before them (if a partition was read ahead) need not.
    settings = Settings(
        _env_file=None,
        home=env.home,
        registry_dir=env.registry,
    )
    with TestClient(create_app(settings)) as client:
        history = client.get("/v1/drift").json()
        assert history and any(r["drift"] for r in history)
        assert all(r["model_version"] == "v0001" for r in history)
        assert client.get("/v1/drift?format=png").content[:4] == b"\x89PNG"
        metrics = client.get("/metrics").text
        assert 'alloop_drift_score{method="embedding-auc"}' in metrics
    status = env.alloop("drift", "status", "--last", "20")
    assert status.returncode == 0, status.stderr
    final = json.loads(status.stdout.strip().splitlines()[-1])
    assert final["windows"] == len(history)


def test_a_restarted_scorer_goes_on_with_the_reference_it_had(
    env: Env, setfit_registry: ModelRegistry, workers
) -> None:
    """The reference is learned from the tweets before the restart; after it, the stream is
    banking questions only, and they are compared with that reference (a scorer that learned
    a new reference after the restart would take them as the reference and say nothing)."""
    env.registry = setfit_registry.root
    settings = Settings(_env_file=None, home=env.home, registry_dir=env.registry)
    pool = tweets("valid")
    before = pool[:: len(pool) // (3 * WINDOW)][: 3 * WINDOW]  # across the file's labels
    random.Random(0).shuffle(before)  # each window like the others (the file is in label runs)
    first = workers(["worker", "scorer", "--worker-id", "s1"], "s1", **drift_vars())
    first.start().wait_for("assigned partitions", timeout=STARTUP)
    env.produce(before)
    first.wait_for("drift window 1 (v0001)", timeout=600)
    learned = load_reference(settings.drift_references_path, "v0001", WINDOW)
    assert [w.size for w in learned] == [WINDOW, WINDOW]
    assert first.stop() == 0

    second = workers(["worker", "scorer", "--worker-id", "s2"], "s2", **drift_vars())
    second.start().wait_for("assigned partitions", timeout=STARTUP)
    env.produce(banking(2 * WINDOW))
    second.wait_for("drift window", timeout=600)
    log = second.text()
    assert f"v0001 goes on with its stored reference ({2 * WINDOW} documents)" in log, log[-3000:]
    assert "reference window 1 of 2" not in log
    kept = load_reference(settings.drift_references_path, "v0001", WINDOW)
    for old, now in zip(learned, kept, strict=True):
        assert old.embeddings is not None and now.embeddings is not None
        assert np.array_equal(old.embeddings, now.embeddings)
    reports = DriftStore(settings.drift_path).history()
    after = reports[1:]  # the first report is s1's, on tweets
    assert after and all(r.reference_documents == 2 * WINDOW for r in after)
    assert any("embedding-auc" in r.crossed for r in after), [r.summary() for r in after]


def test_drift_check_tells_banking_questions_from_tweets(
    env: Env, setfit_registry: ModelRegistry, tmp_path: Path
) -> None:
    env.registry = setfit_registry.root

    def write(name: str, docs: list[Document]) -> Path:
        path = tmp_path / name
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "text"])
            writer.writerows([d.id, d.text] for d in docs)
        return path

    # The tweet file is not shuffled (its first rows are one label), so both halves are drawn
    # across the whole file, alternately: the same stream, no drift.
    pool = tweets("valid")
    spread = pool[:: len(pool) // 240][:240]
    reference = write("reference.csv", spread[0::2])
    same = write("same.csv", spread[1::2])
    other = write("other.csv", banking(80))
    for current, drifted in ((other, True), (same, False)):
        result = env.alloop(
            "drift",
            "check",
            "--reference",
            str(reference),
            "--current",
            str(current),
            "--no-progress",
        )
        assert result.returncode == 0, result.stderr
        assert "scoring with v0001" in result.stdout
        final = json.loads(result.stdout.strip().splitlines()[-1])
        assert final["drift"] is drifted, result.stdout
        assert final["model_version"] == "v0001"
        for method in ("embedding-auc", "label-mix", "confidence-drop", "estimated-macro-f1"):
            assert {"score", "threshold", "crossed"} <= set(final[method]), method
    assert (
        env.alloop(
            "drift",
            "check",
            "--reference",
            str(reference),
            "--current",
            str(tmp_path / "missing.csv"),
        ).returncode
        != 0
    )
