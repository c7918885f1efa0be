"""The model owner's lifecycle through the real ``alloop`` command, the real broker, the real
MiniLM tagger and SetFit: an entity seed model trained from a CoNLL slice of WNUT-17 tags the
stream; ``alloop evaluate`` prints what ``/v1/evaluations`` serves; an export of the label
store trains again as a seed file."""

from __future__ import annotations

import csv
import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from loop.entities.conll import read_labelled
from loop.messages import Document, TaggedDocument, decode
from loop.settings import ApiSettings, EntitySettings, Settings
from tests.conftest import DATASETS, tweets
from tests.integration.conftest import Env, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KEY = "lifecycle-key"
WNUT = DATASETS / "wnut17"
TAGGER = {
    "ALLOOP_ENTITIES__PATTERNS": "false",  # WNUT's types: no financial patterns
    "ALLOOP_ENTITIES__EPOCHS": "4",
    "ALLOOP_ENTITIES__TIME_BUDGET_S": "150",
}


def sentences(source: Path, count: int, out: Path, skip: int = 0) -> Path:
    """The sentences ``skip`` to ``skip + count`` of a CoNLL file, written to ``out``."""
    blocks = source.read_text(encoding="utf-8").split("\n\n")
    out.write_text("\n\n".join(blocks[skip : skip + count]) + "\n", encoding="utf-8")
    return out


def succeeded(done: subprocess.CompletedProcess[str]) -> str:
    """stdout of a finished ``alloop`` run, which must have exited 0."""
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def api_of(env: Env, entities: bool) -> TestClient:
    settings = Settings(
        home=env.home,
        registry_dir=env.registry,
        api=ApiSettings(keys=[SecretStr(KEY)], reload_check_s=3600),
        entities=EntitySettings(enabled=entities, patterns=False),
    )
    return TestClient(create_app(settings), headers={"X-API-Key": KEY})


@pytest.fixture
def wnut(tmp_path: Path) -> tuple[Path, Path]:
    """120 training sentences of WNUT-17 for the seed, 60 of its dev set for the test file."""
    seed = sentences(WNUT / "wnut17train.conll", 120, tmp_path / "seed.conll")
    test = sentences(WNUT / "emerging.dev.conll", 60, tmp_path / "test.conll")
    return seed, test


def test_an_entity_seed_from_conll_tags_the_stream_and_evaluates_as_the_api_does(
    env: Env, workers, wnut: tuple[Path, Path], tmp_path: Path
) -> None:
    seed, test = wnut
    trained = succeeded(
        env.alloop(
            "train", "--task", "entities", "--data", str(seed), "--test", str(test), extra=TAGGER
        )
    )
    assert "registered entity v0001 (promoted)" in trained
    assert "scored on the frozen test set: 60 documents {'test-file': 60}" in trained
    listed = succeeded(env.alloop("models", "list", "--task", "entities"))
    assert listed.startswith("* v0001") and "minilm-tagger" in listed

    # The scorer tags the stream with it, through the real broker.
    scorer = workers(
        ["worker", "scorer", "--worker-id", "s1"],
        "scorer",
        ALLOOP_ENTITIES__ENABLED="true",
        ALLOOP_SCORER__CANDIDATES="false",
        **TAGGER,
    ).start()
    scorer.wait_for("assigned partitions", timeout=240)
    texts = [
        "Justin Bieber is playing in London tonight",
        "Apple and Google hire in Seattle",
        "Taylor Swift flew to Paris with Selena Gomez",
    ]
    env.produce([Document(id=f"d{i}", text=t) for i, t in enumerate(texts)])
    records = read_topic(env.broker, env.tagged, lambda rs: len(rs) >= len(texts), timeout=240)
    tagged = [decode(r.value, TaggedDocument) for r in records]
    assert {t.entity_version for t in tagged} == {"v0001"}
    found = [e for t in tagged for e in t.entities]
    assert found, "the seed tagger found no entity in three sentences full of them"
    assert {e.label for e in found} <= {
        "person",
        "location",
        "corporation",
        "group",
        "product",
        "creative-work",
    }
    assert all(e.source == "model" for e in found)

    # evaluate on the owner's file prints the evaluation the API serves for it.
    printed = env.alloop(
        "evaluate", "v0001", "--task", "entities", "--data", str(test), extra=TAGGER
    )
    mine = json.loads(succeeded(printed))
    with api_of(env, entities=True) as client:
        served = client.get("/v1/evaluations/v0001", params={"task": "entities"}).json()
    assert mine == served
    assert mine["test_size"] == 60 and sum(m["support"] for m in mine["per_type"].values()) > 0
    assert len(mine["type_confusion"]) == len(mine["types"]) + 1

    # The export of the label store trains again as a seed file.
    export = tmp_path / "labels.conll"
    succeeded(
        env.alloop(
            "labels",
            "export",
            "--task",
            "entities",
            "--format",
            "conll",
            "--origin",
            "seed",
            "--out",
            str(export),
        )
    )
    # One document per text: the slice holds one sentence twice.
    documents = {item.id: item.example for item in read_labelled(seed)}
    assert export.read_text(encoding="utf-8").count("# origin = seed") == len(documents) == 119
    again = env.alloop(
        "train",
        "--task",
        "entities",
        "--data",
        str(export),
        "--no-seed-store",
        extra={
            **TAGGER,
            "ALLOOP_REGISTRY_DIR": str(tmp_path / "again"),
            "ALLOOP_ENTITIES__TIME_BUDGET_S": "30",
        },
    )
    assert "registered entity v0001 (promoted)" in succeeded(again)
    card = json.loads(
        (tmp_path / "again" / "entities" / "versions" / "v0001" / "card.json").read_text()
    )
    per_type = Counter(span.label for example in documents.values() for span in example.spans)
    assert card["counts"]["train"] == len(documents)
    assert card["counts"]["per_type"] == dict(sorted(per_type.items()))


def test_a_classifier_seed_evaluates_as_the_api_does_and_its_export_trains_again(
    env: Env, tmp_path: Path
) -> None:
    def csv_of(docs: list[Document], path: Path) -> Path:
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "text", "label"])
            writer.writerows([d.id, d.text, d.label] for d in docs)
        return path

    seed = csv_of(tweets("train", per_label=8), tmp_path / "seed.csv")
    test = csv_of(tweets("valid", limit=40), tmp_path / "test.csv")
    fast = ("--iterations", "2", "--freeze-body")
    succeeded(env.alloop("train", "--data", str(seed), "--test", str(test), *fast))

    mine = json.loads(succeeded(env.alloop("evaluate", "v0001", "--data", str(test))))
    with api_of(env, entities=False) as client:
        served = client.get("/v1/evaluations/v0001").json()
    assert mine == served
    assert mine["test_size"] == 40 and mine["test_origins"] == {"test-file": 40}
    assert sum(map(sum, mine["confusion"])) == 40

    export = tmp_path / "labels.csv"
    succeeded(
        env.alloop("labels", "export", "--format", "csv", "--origin", "seed", "--out", str(export))
    )
    again = env.alloop(
        "train",
        "--data",
        str(export),
        "--no-seed-store",
        *fast,
        extra={"ALLOOP_REGISTRY_DIR": str(tmp_path / "again")},
    )
    assert "registered v0001 (promoted) with labels Bearish, Bullish, Neutral" in succeeded(again)
    card = json.loads((tmp_path / "again" / "versions" / "v0001" / "card.json").read_text())
    assert card["counts"]["per_label"] == {"Bearish": 8, "Bullish": 8, "Neutral": 8}
