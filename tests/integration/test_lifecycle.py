"""The model owner's lifecycle through the real ``alloop`` command, the real broker, the real
MiniLM tagger and SetFit: an entity seed model trained from a CoNLL slice of WNUT-17 tags the
stream; ``alloop evaluate`` prints what ``/v1/evaluations`` serves; an export of the label
store (answers of two annotators, with their reasons) trains again as a seed file. Each test
stays within the 600 s limit on a loaded 2-core machine: one training run per test where it
can."""

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
from loop.entities.conll import Labelled, read_labelled
from loop.entities.factories import load_extractor
from loop.entities.serving import mention
from loop.labels import LabelStore
from loop.messages import Document, LabelEvent, TaggedDocument, decode
from loop.settings import ApiSettings, EntitySettings, Settings
from tests.conftest import DATASETS, tweets
from tests.integration.conftest import Env, read_topic

# Each alloop command loads torch and a model; on a 2-core machine that a benchmark keeps
# busy, one training run took over 300 s (the default of Env.alloop) and a test over 600 s.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1800)]
COMMAND_TIMEOUT_S = 900

KEY = "lifecycle-key"
WNUT = DATASETS / "wnut17"
TAGGER = {
    "ALLOOP_ENTITIES__PATTERNS": "false",  # WNUT's types: no financial patterns
    "ALLOOP_ENTITIES__TIME_BUDGET_S": "400",  # 60 steps (min_steps) over 32 sentences
}


def sentences(source: Path, count: int, out: Path, *, with_entities: bool = False) -> Path:
    """The first ``count`` sentences of a CoNLL file (only those with an entity, when
    ``with_entities``), written to ``out``."""
    blocks = source.read_text(encoding="utf-8").split("\n\n")
    if with_entities:
        blocks = [block for block in blocks if "\tB-" in block]
    out.write_text("\n\n".join(blocks[:count]) + "\n", encoding="utf-8")
    return out


def alloop(env: Env, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run ``alloop ARGS`` with the test's settings and ``extra`` variables."""
    return env.alloop(*args, extra=extra, timeout=COMMAND_TIMEOUT_S)


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
    """WNUT-17: 32 training sentences that hold an entity for the seed, the first 60
    sentences of its dev set for the owner's test file."""
    seed = sentences(WNUT / "wnut17train.conll", 32, tmp_path / "seed.conll", with_entities=True)
    test = sentences(WNUT / "emerging.dev.conll", 60, tmp_path / "test.conll")
    return seed, test


def test_an_entity_seed_from_conll_tags_the_stream_and_evaluates_as_the_api_does(
    env: Env, workers, wnut: tuple[Path, Path]
) -> None:
    seed, test = wnut
    trained = succeeded(
        alloop(
            env, "train", "--task", "entities", "--data", str(seed), "--test", str(test), **TAGGER
        )
    )
    assert "registered entity v0001 (promoted)" in trained
    assert "scored on the frozen test set: 60 documents {'test-file': 60}" in trained
    listed = succeeded(alloop(env, "models", "list", "--task", "entities"))
    assert listed.startswith("* v0001") and "minilm-tagger" in listed

    # The scorer tags the stream with it, through the real broker: what the seed model says.
    scorer = workers(
        ["worker", "scorer", "--worker-id", "s1"],
        "scorer",
        ALLOOP_ENTITIES__ENABLED="true",
        ALLOOP_SCORER__CANDIDATES="false",
        **TAGGER,
    ).start()
    scorer.wait_for("assigned partitions", timeout=300)
    docs = [Document(id=item.id, text=item.example.text) for item in read_labelled(seed)[:12]]
    env.produce(docs)
    records = read_topic(env.broker, env.tagged, lambda rs: len(rs) >= len(docs), timeout=300)
    tagged = {t.id: t for t in (decode(r.value, TaggedDocument) for r in records)}
    assert set(tagged) == {d.id for d in docs}
    assert {t.entity_version for t in tagged.values()} == {"v0001"}
    card = json.loads((env.registry / "entities/versions/v0001/card.json").read_text())
    tagger = load_extractor(card["kind"], env.registry / "entities/versions/v0001/model")
    said = tagger.predict([d.text for d in docs])
    for doc, spans in zip(docs, said, strict=True):
        served = [(e.start, e.end, e.label, e.source) for e in tagged[doc.id].entities]
        assert served == [(s.start, s.end, s.label, "model") for s in spans], doc.text
    # Measured on a loaded 2-core machine: after its 60 steps the tagger tags no span, not even
    # in these sentences it learned (WNUT-17 is hard; 0 spans on the 60 test sentences too).
    # So what this shows is that the stream is tagged by v0001 with v0001's own answers.

    # evaluate on the owner's file prints the evaluation the API serves for it.
    printed = alloop(env, "evaluate", "v0001", "--task", "entities", "--data", str(test), **TAGGER)
    mine = json.loads(succeeded(printed))
    with api_of(env, entities=True) as client:
        served_evaluation = client.get("/v1/evaluations/v0001", params={"task": "entities"})
    assert mine == served_evaluation.json()
    assert mine["test_size"] == 60 and sum(m["support"] for m in mine["per_type"].values()) > 0
    assert len(mine["type_confusion"]) == len(mine["types"]) + 1


ORIGINS = ("uncertain", "evaluation", "unseen", "random")


def answers_of(items: list[Labelled]) -> list[LabelEvent]:
    """Two annotators' answers for each document (the second one disagrees on every fifth),
    with the reasons the selection gives."""
    events = []
    for n, item in enumerate(items):
        spans = [mention(span) for span in item.example.spans]
        for who in ("ann", "bob"):
            mine = spans[:-1] if who == "bob" and n % 5 == 0 and spans else spans
            events.append(
                LabelEvent(
                    id=item.id,
                    text=item.example.text,
                    task="entities",
                    spans=mine,
                    response_id=f"{who}-{item.id}",
                    annotator=who,
                    origin=ORIGINS[n % len(ORIGINS)],
                )
            )
    return events


def test_an_entity_export_of_the_label_store_trains_again(env: Env, tmp_path: Path) -> None:
    items = read_labelled(
        sentences(WNUT / "wnut17train.conll", 40, tmp_path / "w.conll", with_entities=True)
    )
    store = LabelStore(env.home / "labels" / "labels.db")
    store.add(answers_of(items))
    agreed = [item for n, item in enumerate(items) if n % 5 or not item.example.spans]
    store.close()

    export = tmp_path / "labels.conll"
    done = alloop(
        env, "labels", "export", "--task", "entities", "--format", "conll", "--out", str(export)
    )
    succeeded(done)
    assert f"exported {len(agreed)} entities label(s)" in done.stderr
    text = export.read_text(encoding="utf-8")
    assert text.count("# agreement = 1.0") == len(agreed)
    assert {o: text.count(f"# origin = {o}") for o in ORIGINS} == {
        o: sum(1 for n, _ in enumerate(items) if n % 5 and ORIGINS[n % 4] == o) for o in ORIGINS
    }

    # What is tested here is the file, not the tagger (trained above): the gazetteer fake
    # learns from it in milliseconds.
    quick = {**TAGGER, "ALLOOP_ENTITIES__MODEL_KIND": "gazetteer"}
    again = alloop(
        env,
        "train",
        "--task",
        "entities",
        "--data",
        str(export),
        **quick,
        ALLOOP_REGISTRY_DIR=str(tmp_path / "again"),
    )
    assert "registered entity v0001 (promoted)" in succeeded(again)
    card = json.loads((tmp_path / "again/entities/versions/v0001/card.json").read_text())
    per_type = Counter(span.label for item in agreed for span in item.example.spans)
    assert card["counts"]["train"] == len(agreed)
    assert card["counts"]["per_type"] == dict(sorted(per_type.items()))


def csv_of(docs: list[Document], path: Path) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "label"])
        writer.writerows([d.id, d.text, d.label] for d in docs)
    return path


FAST = ("--iterations", "2", "--freeze-body")


def test_a_classifier_seed_evaluates_as_the_api_does(env: Env, tmp_path: Path) -> None:
    seed = csv_of(tweets("train", per_label=8), tmp_path / "seed.csv")
    test = csv_of(tweets("valid", limit=40), tmp_path / "test.csv")
    succeeded(alloop(env, "train", "--data", str(seed), "--test", str(test), *FAST))

    mine = json.loads(succeeded(alloop(env, "evaluate", "v0001", "--data", str(test))))
    with api_of(env, entities=False) as client:
        served = client.get("/v1/evaluations/v0001").json()
    assert mine == served
    assert mine["test_size"] == 40 and mine["test_origins"] == {"test-file": 40}
    assert sum(map(sum, mine["confusion"])) == 40


def test_a_classifier_export_of_the_label_store_trains_again(env: Env, tmp_path: Path) -> None:
    docs = tweets("train", per_label=6)
    store = LabelStore(env.home / "labels" / "labels.db")
    store.add(
        LabelEvent(
            id=d.id,
            text=d.text,
            label=d.label,
            response_id=f"r-{d.id}",
            origin=ORIGINS[n % len(ORIGINS)],
        )
        for n, d in enumerate(docs)
    )
    store.close()
    export = tmp_path / "labels.csv"
    succeeded(alloop(env, "labels", "export", "--format", "csv", "--out", str(export)))
    with export.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["id"]: (r["label"], r["origin"], r["agreement"]) for r in rows} == {
        d.id: (d.label, ORIGINS[n % len(ORIGINS)], "1.0") for n, d in enumerate(docs)
    }
    again = alloop(
        env, "train", "--data", str(export), *FAST, ALLOOP_REGISTRY_DIR=str(tmp_path / "again")
    )
    assert "registered v0001 (promoted) with labels Bearish, Bullish, Neutral" in succeeded(again)
    card = json.loads((tmp_path / "again" / "versions" / "v0001" / "card.json").read_text())
    assert card["counts"]["per_label"] == {"Bearish": 6, "Bullish": 6, "Neutral": 6}
