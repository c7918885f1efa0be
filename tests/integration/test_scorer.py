"""The scorer on the real broker: every document tagged once, nothing lost on SIGKILL, poison
messages dead-lettered, work shared in a group, models hot-reloaded."""

from __future__ import annotations

import csv
import itertools
from collections import defaultdict
from pathlib import Path

import pytest
from kafka import KafkaProducer

from loop.classification.base import ClassifierConfig
from loop.messages import Document, TaggedDocument, decode, encode
from loop.registry import ModelRegistry
from loop.testing.classifier import KeywordFactory
from loop.testing.records import Record
from tests.conftest import tweets
from tests.integration.conftest import Env, read_topic
from tests.strategies import poison as poison_of
from tests.strategies import samples, valid

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def ids_seen(records: list) -> set[str]:
    return {decode(r.value, TaggedDocument).id for r in records}


def by_id(records: list) -> dict[str, list[bytes]]:
    grouped: dict[str, list[bytes]] = defaultdict(list)
    for record in records:
        grouped[decode(record.value, TaggedDocument).id].append(bytes(record.value))
    return grouped


def keyword_registry(root: Path, *trainings: list[Document]) -> ModelRegistry:
    """A registry with one fast keyword model per training set; the first is promoted."""
    registry = ModelRegistry(root)
    factory = KeywordFactory()
    for docs in trainings:
        clf = factory.train(
            [d.text for d in docs], [str(d.label) for d in docs], ClassifierConfig()
        )
        registry.publish(clf.save, labels=clf.labels, kind=factory.name)
    registry.promote("v0001")
    return registry


def test_ingested_file_comes_out_tagged_once_per_id_by_the_real_model(
    env: Env, setfit_registry: ModelRegistry, scorers, tmp_path: Path
) -> None:
    env.registry = setfit_registry.root
    docs = tweets("valid", limit=150)
    data = tmp_path / "stream.csv"
    with data.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        for doc in docs[:100]:
            writer.writerow([doc.id, doc.text])
        writer.writerow(["bad-1", ""])  # line 102: empty text
        for doc in docs[100:]:
            writer.writerow([doc.id, doc.text])
        handle.write("bad-2,too,many,fields\n")  # line 153
    result = env.alloop("ingest", str(data), "--no-progress")
    assert result.returncode == 1, result.stderr
    assert f"{data}:102" in result.stderr and f"{data}:153" in result.stderr
    assert "published 150 documents" in result.stdout

    scorers("s1").start()
    wanted = {d.id for d in docs}
    records = read_topic(env.broker, env.tagged, lambda rs: ids_seen(rs) >= wanted, settle=3)
    grouped = by_id(records)
    assert set(grouped) == wanted
    assert all(len(copies) == 1 for copies in grouped.values()), "a document was tagged twice"
    labels = set(setfit_registry.card("v0001").labels)
    for record in records:
        tagged = decode(record.value, TaggedDocument)
        assert tagged.status == "scored" and tagged.model_version == "v0001"
        assert tagged.label in labels
        assert sum(tagged.probabilities.values()) == pytest.approx(1.0, abs=2e-4)
        assert tagged.score == max(tagged.probabilities.values())


def test_scorer_killed_mid_stream_loses_nothing(
    env: Env, setfit_registry: ModelRegistry, scorers
) -> None:
    env.registry = setfit_registry.root
    docs = tweets("train", limit=1200)
    env.produce(docs)
    first = scorers("before-kill").start()
    read_topic(env.broker, env.tagged, lambda rs: len(rs) >= 150, timeout=180)
    first.kill()

    scorers("after-kill").start()
    wanted = {d.id for d in docs}
    records = read_topic(
        env.broker, env.tagged, lambda rs: ids_seen(rs) >= wanted, timeout=300, settle=3
    )
    grouped = by_id(records)
    assert set(grouped) == wanted, f"{len(wanted - set(grouped))} documents lost"
    for doc_id, copies in grouped.items():
        assert len(set(copies)) == 1, f"replayed copies of {doc_id} differ"


def test_malformed_messages_go_to_the_dead_letter_topic_and_the_worker_goes_on(
    env: Env, scorers
) -> None:
    # No model is promoted: valid documents still flow, tagged as unscored.
    scorers("s1").start()
    producer = KafkaProducer(bootstrap_servers=env.broker, acks="all")
    producer.send(env.raw, key=b"p1", value=b"this is not json {")
    producer.send(
        env.raw, key=b"p2", value=b'{"schema": "document", "v": 1, "id": "p2", "text": "   "}'
    )
    producer.send(env.raw, key=b"p3", value=b'{"schema": "label", "v": 1, "id": "p3", "text": "x"}')
    producer.send(
        env.raw, key=b"p4", value=b'{"schema": "document", "v": 9, "id": "p4", "text": "x"}'
    )
    producer.flush()
    good = [Document(id=f"good-{i}", text=f"market update number {i}") for i in range(20)]
    env.produce(good)

    dead = read_topic(env.broker, f"{env.raw}.dlq", lambda rs: len(rs) >= 4, timeout=120, settle=1)
    reasons = {r.key.decode(): dict(r.headers)["alloop.error"].decode() for r in dead}
    assert set(reasons) == {"p1", "p2", "p3", "p4"}
    assert "not JSON" in reasons["p1"]
    assert "text" in reasons["p2"] and "blank" in reasons["p2"]
    assert "schema" in reasons["p3"]
    assert "version" in reasons["p4"]
    original = {r.key.decode(): bytes(r.value) for r in dead}
    assert original["p1"] == b"this is not json {"

    wanted = {d.id for d in good}
    tagged = read_topic(env.broker, env.tagged, lambda rs: ids_seen(rs) >= wanted)
    assert ids_seen(tagged) == wanted
    assert {decode(r.value, TaggedDocument).status for r in tagged} == {"unscored"}


def test_two_scorers_in_one_group_split_the_work(env: Env, scorers) -> None:
    train = tweets("train", per_label=20)
    keyword_registry(env.registry, train)
    a = scorers("scorer-a").start()
    b = scorers("scorer-b").start()
    # The first scorer gives up partitions when the second joins: wait for that rebalance.
    a.wait_for("assigned partitions", count=2, timeout=60)
    docs = tweets("valid", limit=600)
    env.produce(docs)
    wanted = {d.id for d in docs}
    records = read_topic(env.broker, env.tagged, lambda rs: ids_seen(rs) >= wanted, settle=2)
    grouped = by_id(records)
    assert set(grouped) == wanted
    assert all(len(copies) == 1 for copies in grouped.values())
    workers = defaultdict(int)
    for record in records:
        workers[dict(record.headers)["alloop.worker"].decode()] += 1
    assert set(workers) == {"scorer-a", "scorer-b"}, workers
    assert a.stop() == 0 and b.stop() == 0


def test_promotion_is_picked_up_without_restart_and_nothing_is_lost(env: Env, scorers) -> None:
    train = tweets("train", per_label=20)
    registry = keyword_registry(env.registry, train, train[:30])
    scorer = scorers("s1").start()
    first = [Document(id=f"a-{i}", text=d.text) for i, d in enumerate(tweets("valid", limit=100))]
    env.produce(first)
    wanted_first = {d.id for d in first}
    read_topic(env.broker, env.tagged, lambda rs: ids_seen(rs) >= wanted_first)

    registry.promote("v0002")
    scorer.wait_for("now serving model v0002", timeout=30)
    second = [Document(id=f"b-{i}", text=d.text) for i, d in enumerate(tweets("valid", limit=100))]
    env.produce(second)
    wanted = wanted_first | {d.id for d in second}
    records = read_topic(env.broker, env.tagged, lambda rs: ids_seen(rs) >= wanted, settle=2)
    grouped = by_id(records)
    assert set(grouped) == wanted and all(len(c) == 1 for c in grouped.values())
    versions = {
        decode(r.value, TaggedDocument).id: decode(r.value, TaggedDocument).model_version
        for r in records
    }
    assert {versions[i] for i in wanted_first} == {"v0001"}
    assert {versions[d.id] for d in second} == {"v0002"}
    assert scorer.stop() == 0
    assert "stopped" in scorer.text()


@pytest.mark.parametrize("precision", ["float32", "bfloat16", "int8"])
def test_rescoring_in_other_batches_republishes_the_same_bytes(
    setfit_registry: ModelRegistry, tmp_path: Path, precision: str
) -> None:
    """A replay re-scores documents in batches of another composition; the published bytes
    must not change, in any precision (bfloat16 emulated where the CPU lacks it; see
    docs/messages.md)."""
    import random

    from loop.classification.serving import ModelWatcher
    from loop.embeddings.precision import Precision
    from loop.settings import ScorerSettings, Settings
    from workers.scorer import Scorer

    watcher = ModelWatcher(setfit_registry, Precision(precision))
    watcher.refresh()
    settings = Settings(home=tmp_path, scorer=ScorerSettings(candidates=False))
    docs = tweets("valid", limit=1000)
    records = [Record("docs.raw", 0, i, d.id.encode(), encode(d), []) for i, d in enumerate(docs)]

    def published(order: list[int], size: int) -> dict[str, bytes]:
        scorer = Scorer(settings, watcher, "w1")
        out: dict[str, bytes] = {}
        for start in range(0, len(order), size):
            batch = [records[i] for i in order[start : start + size]]
            out.update((o.key, o.value) for o in scorer.handle(batch) if o.topic == "docs.tagged")
        return out

    in_order = published(list(range(len(docs))), 64)
    shuffled = list(range(len(docs)))
    random.Random(3).shuffle(shuffled)
    reordered = published(shuffled, 17)
    assert set(in_order) == set(reordered) == {d.id for d in docs}
    differing = sorted(k for k in in_order if in_order[k] != reordered[k])
    # Fixed-width batches and a head that scores a row at a time: none may differ.
    assert not differing, f"{len(differing)} of {len(docs)} documents changed: {differing}"


def test_a_scorer_process_set_to_int8_tags_with_the_int8_encoder(
    env: Env, setfit_registry: ModelRegistry, workers
) -> None:
    """ALLOOP_PRECISION reaches the scorer process: its tagged probabilities are the int8
    classifier's, which are not float32's."""
    import numpy as np

    from loop.classification.serving import ModelWatcher
    from loop.embeddings.precision import Precision

    env.registry = setfit_registry.root
    docs = tweets("valid", limit=40)
    workers(["worker", "scorer", "--worker-id", "s1"], "s1", ALLOOP_PRECISION="int8").start()
    env.produce(docs)
    wanted = {d.id for d in docs}
    records = read_topic(env.broker, env.tagged, lambda rs: ids_seen(rs) >= wanted, timeout=180)
    tagged = {t.id: t for t in (decode(r.value, TaggedDocument) for r in records)}
    expected = {}
    for precision in (Precision.INT8, Precision.FLOAT32):
        watcher = ModelWatcher(setfit_registry, precision)
        watcher.refresh()
        assert watcher.served is not None
        model = watcher.served.classifier
        probs = model.predict_proba([d.text for d in docs])
        expected[precision] = {
            d.id: dict(zip(model.labels, row.tolist(), strict=True))
            for d, row in zip(docs, probs, strict=True)
        }

    def largest_gap(precision: Precision) -> list[float]:
        return [
            max(
                abs(tagged[d.id].probabilities[k] - v) for k, v in expected[precision][d.id].items()
            )
            for d in docs
        ]

    assert max(largest_gap(Precision.INT8)) <= 5e-5 + 1e-9  # the scorer rounds to 4 decimals
    assert np.mean(largest_gap(Precision.FLOAT32)) > 1e-4


def test_a_scorer_process_on_one_thread_says_so_and_tags_like_the_model(
    env: Env, setfit_registry: ModelRegistry, workers
) -> None:
    """ALLOOP_SCORER__THREADS reaches the scorer process (its start line names the torch
    threads it runs on), and one thread changes no published probability: they are the
    model's on every thread of this process."""
    from loop.classification.serving import ModelWatcher

    env.registry = setfit_registry.root
    docs = tweets("valid", limit=40)
    scorer = workers(
        ["worker", "scorer", "--worker-id", "s1"],
        "s1",
        ALLOOP_SCORER__THREADS="1",
        ALLOOP_PRECISION="float32",
    ).start()
    scorer.wait_for("on 1 torch thread(s)", timeout=180)
    env.produce(docs)
    wanted = {d.id for d in docs}
    records = read_topic(env.broker, env.tagged, lambda rs: ids_seen(rs) >= wanted, timeout=180)
    tagged = {t.id: t for t in (decode(r.value, TaggedDocument) for r in records)}
    watcher = ModelWatcher(setfit_registry)
    watcher.refresh()
    assert watcher.served is not None
    model = watcher.served.classifier
    rows = model.predict_proba([d.text for d in docs])
    for doc, row in zip(docs, rows, strict=True):
        for label, p in zip(model.labels, row.tolist(), strict=True):
            assert abs(tagged[doc.id].probabilities[label] - p) <= 5e-5 + 1e-9


def test_poison_of_every_kind_is_dead_lettered_alone_and_the_scorer_lives_on(
    env: Env, workers
) -> None:
    keyword_registry(env.registry, tweets("train", per_label=20))
    scorer = workers(
        ["worker", "scorer", "--worker-id", "s1"],
        "s1",
        ALLOOP_ENTITIES__ENABLED="true",
        ALLOOP_KAFKA__MAX_REQUEST_SIZE="200000",  # more than p-deep, less than p-big's tags
    ).start()
    scorer.wait_for("assigned partitions")
    big = Document(id="p-big", text="$AAPL " * 3_000)  # 18 kB in, 230 kB with its 3,000 tags
    poison = {
        "p-deep": b"[" * 100_000,  # overflowed json.loads' stack: the scorer died on it
        "p-meta": b'{"schema": "document", "id": "p-meta", "text": "t", '
        b'"metadata": {"k": "\\ud800"}}',  # decoded, then failed to encode
        "p-text": b'{"schema": "document", "id": "p-text", "text": "lone \\udfff"}',
        "p-big": encode(big),  # its tagged copy is larger than the producer may send
    }
    keys = {"p-deep": b"p-deep", "p-meta": None, "p-text": b"not-its-id", "p-big": b"p-big"}
    # and near-valid poison drawn from the message schema (missing and mistyped fields, bad
    # versions, other schemas, deep nesting, lone surrogates, bytes not UTF-8, NaN...)
    for n, drawn in enumerate(samples(poison_of(Document), 80)):
        if drawn.value and drawn.value not in poison.values():
            poison[f"gen-{n} {drawn.how}"] = drawn.value
            keys[f"gen-{n} {drawn.how}"] = f"gen-{n}".encode()
    good = [Document(id=f"good-{i}", text=f"$TSLA soars, update {i}") for i in range(20)]
    generated = samples(valid(Document), 20)  # any id, text and metadata a producer may send
    producer = env.producer()
    names = iter(poison)
    for doc in [*good, *generated]:
        producer.send(env.raw, key=doc.id.encode(), value=encode(doc))
        for name in itertools.islice(names, 1 + len(poison) // 40):
            producer.send(env.raw, key=keys[name], value=poison[name])
    for name in names:
        producer.send(env.raw, key=keys[name], value=poison[name])
    producer.flush()
    producer.close()

    dead = read_topic(
        env.broker, f"{env.raw}.dlq", lambda rs: len(rs) >= len(poison), timeout=120, settle=2
    )
    by_value = {bytes(r.value): dict(r.headers) for r in dead}
    assert sorted(by_value) == sorted(poison.values()), "a dead letter lost its own bytes"
    assert len(dead) == len(poison), "a poison message was dead-lettered twice"
    assert all(headers["alloop.error"] for headers in by_value.values())
    reasons = {name: by_value[value]["alloop.error"].decode() for name, value in poison.items()}
    for name in ("p-deep", "p-meta", "p-text"):
        assert reasons[name].startswith("not JSON"), reasons[name]
    assert "docs.tagged message made from it is" in reasons["p-big"]

    wanted = {d.id for d in [*good, *generated]}
    tagged = read_topic(env.broker, env.tagged, lambda rs: ids_seen(rs) >= wanted, settle=1)
    assert ids_seen(tagged) == wanted
    copies = [decode(r.value, TaggedDocument) for r in tagged]
    assert all(d.entities for d in copies if d.id.startswith("good-"))
    assert scorer.process is not None and scorer.process.poll() is None, "the scorer died"
    assert scorer.stop() == 0
