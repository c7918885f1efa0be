"""The model owner's lifecycle through the real ``alloop`` command, the real broker, the real
MiniLM tagger and SetFit: an entity seed model trained from a CoNLL file of financial tweets
tags spans on the stream and through ``/v1/predict``; ``alloop evaluate`` prints what
``/v1/evaluations`` serves; an export of the label store (answers of two annotators, with
their reasons) trains again as a seed file. One training run per test where it can: on a
2-core machine that a benchmark keeps busy, each takes minutes."""

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
from loop.registry import ModelRegistry
from loop.settings import ApiSettings, EntitySettings, Settings
from loop.testing.classifier import KeywordClassifier
from tests.conftest import DATASETS, tagged_tweets_conll, tweets
from tests.integration.conftest import Env, read_topic

# Each alloop command loads torch and a model; on a 2-core machine that a benchmark keeps
# busy, one training run took over 300 s (the default of Env.alloop) and a test over 600 s.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(3000)]
COMMAND_TIMEOUT_S = 1800

KEY = "lifecycle-key"
WNUT = DATASETS / "wnut17"
TAGGER = {
    # The served spans are the seed model's alone: no financial patterns merged in.
    "ALLOOP_ENTITIES__PATTERNS": "false",
    # Its 60 steps (min_steps) in full: cut short, the tagger tags nothing yet (10 steps on
    # 16 tweets did not). A step took 15 to 30 s on a 2-core machine a benchmark kept busy.
    "ALLOOP_ENTITIES__TIME_BUDGET_S": "1500",
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
def stock_tweets(tmp_path: Path) -> tuple[Path, Path]:
    """Financial tweets tagged as the demo's annotators tag them (the patterns' cashtags):
    8 short ones (6 with a span) for the seed, one small batch a step; 60 others (40 with a
    span) for the owner's test file."""
    seed = tagged_tweets_conll("train", 6, 2, tmp_path / "seed.conll", max_words=14)
    test = tagged_tweets_conll("valid", 40, 20, tmp_path / "test.conll")
    return seed, test


def whole_tokens(text: str, start: int, end: int) -> bool:
    """The span neither starts nor ends inside a word: whitespace (or the text's edge) before
    it, and whitespace, punctuation or the edge after it."""
    before, after = text[start - 1 : start], text[end : end + 1]
    return before.strip() == "" and (after.strip() == "" or after in ",.;:!?)'\"")


def promote_keyword_classifier(registry: Path) -> None:
    """A classifier for /v1/predict to answer with beside the entities (its labels do not
    matter here)."""
    classifier = KeywordClassifier(["Bearish", "Bullish"], {"up": {"Bullish": 1}})
    classes = ModelRegistry(registry)
    card = classes.publish(classifier.save, labels=classifier.labels, kind="keywords")
    classes.promote(card.version)


def test_an_entity_seed_from_conll_tags_the_stream_and_evaluates_as_the_api_does(
    env: Env, workers, stock_tweets: tuple[Path, Path]
) -> None:
    seed, test = stock_tweets
    trained = succeeded(
        alloop(
            env, "train", "--task", "entities", "--data", str(seed), "--test", str(test), **TAGGER
        )
    )
    assert "registered entity v0001 (promoted) with types STOCK" in trained
    assert "scored on the frozen test set: 60 documents {'test-file': 60}" in trained
    listed = succeeded(alloop(env, "models", "list", "--task", "entities"))
    assert listed.startswith("* v0001") and "minilm-tagger" in listed

    # The scorer tags the stream with it, through the real broker: what the seed model says,
    # and it says something: spans on the tweets of the test file, which it never saw.
    scorer = workers(
        ["worker", "scorer", "--worker-id", "s1"],
        "scorer",
        ALLOOP_ENTITIES__ENABLED="true",
        ALLOOP_SCORER__CANDIDATES="false",
        **TAGGER,
    ).start()
    scorer.wait_for("assigned partitions", timeout=300)
    held = read_labelled(test)
    docs = [Document(id=item.id, text=item.example.text) for item in held[:12]]
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
    assert sum(map(len, said)) > 0, "the seed model tagged no span on the stream"

    # evaluate on the owner's file prints the evaluation the API serves for it; /v1/predict
    # answers with the seed's spans, on whole tokens.
    printed = alloop(env, "evaluate", "v0001", "--task", "entities", "--data", str(test), **TAGGER)
    mine = json.loads(succeeded(printed))
    promote_keyword_classifier(env.registry)
    texts = [item.example.text for item in held if item.example.spans][:10]
    with api_of(env, entities=True) as client:
        served_evaluation = client.get("/v1/evaluations/v0001", params={"task": "entities"})
        predicted = client.post("/v1/predict", json={"documents": [{"text": t} for t in texts]})
    assert mine == served_evaluation.json()
    assert mine["test_size"] == 60 and mine["per_type"]["STOCK"]["support"] > 0
    assert mine["per_type"]["STOCK"]["tp"] > 0, mine["per_type"]
    assert len(mine["type_confusion"]) == len(mine["types"]) + 1
    assert predicted.status_code == 200, predicted.text
    assert predicted.json()["entity_version"] == "v0001"
    results = predicted.json()["results"]
    found = [(text, e) for text, r in zip(texts, results, strict=True) for e in r["entities"]]
    assert found, results
    for text, entity in found:
        assert text[entity["start"] : entity["end"]] == entity["text"]
        assert whole_tokens(text, entity["start"], entity["end"]), (text, entity)
        assert (entity["label"], entity["source"]) == ("STOCK", "model")


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
