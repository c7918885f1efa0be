"""The scorer's batch handling with a fake model and fake records (no broker)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from loop.classification.base import ClassifierConfig
from loop.classification.serving import ModelWatcher, ServedModel
from loop.drift.store import DriftStore
from loop.entities.base import Example, ExtractorConfig, make_span
from loop.entities.serving import ServedExtractor
from loop.messages import Candidate, Document, ModelEvent, TaggedDocument, decode, encode
from loop.registry import ModelRegistry
from loop.settings import DriftSettings, EntitySettings, KafkaSettings, ScorerSettings, Settings
from loop.testing.classifier import KeywordFactory
from loop.testing.extractor import GazetteerFactory
from loop.testing.records import Record
from loop.testing.records import record as make_record
from workers.scorer import Scorer


def record(offset: int, value: bytes | None, key: str = "k") -> Record:
    return make_record(offset, value, key, headers=[("trace", b"abc")])


def entity_scorer(tmp_path: Path, **settings: Any) -> Scorer:
    """A scorer with the entity task on, serving the keyword model of
    :func:`watcher_with_model`; home and registry under ``tmp_path``, ``settings`` the other
    sections (``scorer=...``)."""
    home = tmp_path / "home"
    task = EntitySettings(enabled=True)
    return Scorer(
        Settings(home=home, entities=task, **settings),
        watcher_with_model(tmp_path / "registry"),
        "w1",
    )


def watcher_with_model(tmp_path: Path) -> ModelWatcher:
    registry = ModelRegistry(tmp_path)
    clf = KeywordFactory().train(
        ["stocks soar", "shares rally", "market crash", "prices plunge"],
        ["up", "up", "down", "down"],
        ClassifierConfig(),
    )
    card = registry.publish(clf.save, labels=clf.labels, kind="keywords")
    registry.promote(card.version)
    watcher = ModelWatcher(registry)
    watcher.refresh()
    return watcher


def test_valid_documents_are_tagged_and_poison_is_dead_lettered(tmp_path: Path) -> None:
    scorer = Scorer(Settings(), watcher_with_model(tmp_path), "w1")
    good = Document(id="d1", text="stocks soar again")
    outputs = scorer.handle([record(0, b"{oops", "bad"), record(1, encode(good), "d1")])
    by_topic = {out.topic: out for out in outputs}
    assert set(by_topic) == {"docs.raw.dlq", "docs.tagged"}
    dead = by_topic["docs.raw.dlq"]
    headers = dict(dead.headers)
    assert dead.key == "bad" and dead.value == b"{oops"
    assert headers["alloop.error"].startswith(b"not JSON")
    assert headers["alloop.source"] == b"docs.raw/0/0"
    assert headers["trace"] == b"abc", "the original headers travel with the dead letter"
    tagged = decode(by_topic["docs.tagged"].value, TaggedDocument)
    assert tagged.id == "d1" and tagged.label == "up" and tagged.model_version == "v0001"
    assert by_topic["docs.tagged"].key == "d1"


def test_same_document_same_model_gives_the_same_bytes(tmp_path: Path) -> None:
    scorer = Scorer(Settings(), watcher_with_model(tmp_path), "w1")
    doc = record(0, encode(Document(id="d1", text="prices plunge")), "d1")
    assert scorer.handle([doc])[0].value == scorer.handle([doc])[0].value


def test_without_a_model_documents_come_out_unscored(tmp_path: Path) -> None:
    scorer = Scorer(Settings(), ModelWatcher(ModelRegistry(tmp_path)), "w1")
    outputs = scorer.handle([record(0, encode(Document(id="d1", text="hello")), "d1")])
    tagged = decode(outputs[0].value, TaggedDocument)
    assert tagged.status == "unscored" and tagged.label is None and tagged.model_version is None


class Exploding:
    """A model that fails on one poison text, as a tokenizer bug might."""

    labels: ClassVar[list[str]] = ["a", "b"]
    multi_label: ClassVar[bool] = False

    def predict_proba(self, texts: Any, batch_size: int = 64) -> np.ndarray:
        if any("poison" in t for t in texts):
            raise RuntimeError("model blew up")
        return np.tile(np.array([[0.25, 0.75]], dtype=np.float32), (len(texts), 1))

    def save(self, path: Path) -> None:
        raise NotImplementedError


def test_a_document_that_breaks_the_model_is_isolated(tmp_path: Path) -> None:
    watcher = ModelWatcher(ModelRegistry(tmp_path))
    watcher._served = ServedModel("v0009", Exploding())  # a served model that fails on one text
    scorer = Scorer(Settings(), watcher, "w1")
    docs = [Document(id=f"d{i}", text=t) for i, t in enumerate(["fine", "poison pill", "ok"])]
    outputs = scorer.handle([record(i, encode(d), d.id) for i, d in enumerate(docs)])
    tagged = [decode(o.value, TaggedDocument).id for o in outputs if o.topic == "docs.tagged"]
    dead = [o for o in outputs if o.topic == "docs.raw.dlq"]
    assert sorted(tagged) == ["d0", "d2"]
    assert [d.key for d in dead] == ["d1"]
    assert b"model blew up" in dict(dead[0].headers)["alloop.error"]


def test_a_selection_round_turns_the_window_into_candidates(tmp_path: Path) -> None:
    from loop.messages import Candidate
    from loop.settings import ScorerSettings

    scorer_settings = ScorerSettings(round_size=50, candidates_per_round=5, random_fraction=0.2)
    scorer = Scorer(
        Settings(scorer=scorer_settings, registry_dir=tmp_path), watcher_with_model(tmp_path), "w1"
    )
    sure = [Document(id=f"sure-{i}", text="stocks soar shares rally") for i in range(40)]
    unsure = [Document(id=f"unsure-{i}", text=f"nothing here {i}") for i in range(9)]  # 50/50
    first = scorer.handle([record(i, encode(d), d.id) for i, d in enumerate(sure + unsure)])
    assert [o for o in first if o.topic == "candidates"] == []  # 49 documents: no round yet

    last = Document(id="unsure-9", text="nothing here 9")
    outputs = scorer.handle([record(99, encode(last), last.id)])
    picked = [decode(o.value, Candidate) for o in outputs if o.topic == "candidates"]
    assert len(picked) == 5
    uncertain = [c for c in picked if c.reason == "uncertain"]
    assert len(uncertain) == 4 and all(c.id.startswith("unsure-") for c in uncertain)
    assert [c.reason for c in picked].count("random") == 1
    assert all(c.strategy == "breaking-ties" and c.model_version == "v0001" for c in picked)
    assert scorer.rounds is not None and len(scorer.rounds.window) == 45  # picks left it


def test_before_any_model_the_round_is_a_cold_start(tmp_path: Path) -> None:
    from loop.messages import Candidate
    from loop.settings import ScorerSettings

    registry = ModelRegistry(tmp_path)
    scorer_settings = ScorerSettings(
        round_size=10, candidates_per_round=3, seed_keywords={"down": ["crash"]}
    )
    scorer = Scorer(Settings(scorer=scorer_settings), ModelWatcher(registry), "w1")
    docs = [Document(id=f"d{i}", text="market crash" if i == 7 else f"calm {i}") for i in range(10)]
    outputs = scorer.handle([record(i, encode(d), d.id) for i, d in enumerate(docs)])
    picked = [decode(o.value, Candidate) for o in outputs if o.topic == "candidates"]
    assert len(picked) == 3 and {c.reason for c in picked} == {"cold-start"}
    assert next(c for c in picked if c.strategy == "seed:down").id == "d7"


def test_no_candidates_when_switched_off(tmp_path: Path) -> None:
    from loop.settings import ScorerSettings

    settings = Settings(scorer=ScorerSettings(candidates=False, round_size=1))
    scorer = Scorer(settings, watcher_with_model(tmp_path), "w1")
    outputs = scorer.handle([record(0, encode(Document(id="d", text="x y")), "d")])
    assert [o.topic for o in outputs] == ["docs.tagged"]


def test_entities_are_tagged_and_an_unseen_pair_becomes_a_candidate(tmp_path: Path) -> None:
    scorer = entity_scorer(tmp_path, scorer=ScorerSettings(round_size=3, random_fraction=0.0))
    texts = ["stocks soar", "AUDJPY breaks out 🚀", "shares rally on $AAPL"]
    records = [
        record(i, encode(Document(id=f"d{i}", text=text)), f"d{i}") for i, text in enumerate(texts)
    ]
    outputs = scorer.handle(records)
    tagged = {
        t.id: t
        for t in (decode(o.value, TaggedDocument) for o in outputs if o.topic == "docs.tagged")
    }
    assert tagged["d0"].entities == []
    assert [(e.label, e.text, e.start) for e in tagged["d1"].entities] == [("FOREX", "AUDJPY", 0)]
    assert tagged["d1"].entity_version == "patterns", "the patterns serve before any version"
    entity_candidates = [
        c
        for c in (decode(o.value, Candidate) for o in outputs if o.topic == "candidates")
        if c.task == "entities"
    ]
    assert {(c.id, c.reason) for c in entity_candidates} == {("d1", "unseen"), ("d2", "unseen")}
    pair = next(c for c in entity_candidates if c.id == "d1")
    assert [(s.label, s.text) for s in pair.spans] == [("FOREX", "AUDJPY")]
    assert pair.metadata["unseen"] == ["audjpy"]


class BrokenOn:
    """An entity extractor that fails on one text, as a poison document would make it."""

    types: ClassVar[list[str]] = ["FOREX"]

    def __init__(self, poison: str) -> None:
        self.poison = poison

    def predict(self, texts: list[str], batch_size: int = 32) -> list[list[Any]]:
        if self.poison in texts:
            raise ValueError("tokenizer choked")
        return [[] for _ in texts]

    def near_misses(self, texts: list[str], batch_size: int = 32) -> list[list[Any]]:
        return self.predict(texts, batch_size)

    def save(self, path: Path) -> None:
        raise NotImplementedError


def test_a_document_that_breaks_the_entity_extractor_is_dead_lettered_alone(
    tmp_path: Path,
) -> None:
    scorer = entity_scorer(tmp_path)
    assert scorer.entities is not None
    watcher = scorer.entities.watcher
    assert watcher is not None
    watcher._served = ServedExtractor("v0009", BrokenOn("poison text"))  # type: ignore[arg-type]
    docs = [Document(id="ok", text="stocks soar"), Document(id="bad", text="poison text")]
    outputs = scorer.handle([record(i, encode(d), d.id) for i, d in enumerate(docs)])
    by_topic: dict[str, list[Any]] = {}
    for out in outputs:
        by_topic.setdefault(out.topic, []).append(out)
    (dead,) = by_topic["docs.raw.dlq"]
    assert dead.key == "bad"
    assert dict(dead.headers)["alloop.error"].startswith(b"entity tagging failed: tokenizer")
    (tagged,) = [decode(o.value, TaggedDocument) for o in by_topic["docs.tagged"]]
    assert (tagged.id, tagged.entity_version) == ("ok", "v0009")


def test_tagged_entities_are_the_served_version_and_the_patterns_merged(tmp_path: Path) -> None:
    scorer = entity_scorer(tmp_path)
    assert scorer.entities is not None and scorer.entities.watcher is not None
    taught = "USDJPY and earnings"  # a version that calls USDJPY a stock
    example = Example(taught, (make_span(taught, 0, 6, "STOCK"),))
    version = GazetteerFactory().train([example], ExtractorConfig())
    scorer.entities.watcher._served = ServedExtractor("v0003", version)
    text = "USDJPY rallies as $AAPL soars; ETH flat"
    outputs = scorer.handle([record(0, encode(Document(id="d", text=text)), "d")])
    (tagged,) = [decode(o.value, TaggedDocument) for o in outputs if o.topic == "docs.tagged"]
    assert tagged.entity_version == "v0003"
    assert [(e.text, e.label, e.source) for e in tagged.entities] == [
        ("USDJPY", "FOREX", "gazetteer"),
        ("$AAPL", "STOCK", "pattern"),
        ("ETH", "CRYPTO", "gazetteer"),
    ]


def test_a_new_form_is_routed_once_until_a_version_learns_it(tmp_path: Path) -> None:
    scorer = entity_scorer(tmp_path, scorer=ScorerSettings(round_size=1, random_fraction=0.0))

    def entity_candidates(offset: int, text: str) -> list[Candidate]:
        doc = Document(id=f"d{offset}", text=text)
        outputs = scorer.handle([record(offset, encode(doc), doc.id)])
        found = [decode(o.value, Candidate) for o in outputs if o.topic == "candidates"]
        return [c for c in found if c.task == "entities"]

    first = entity_candidates(0, "AUDJPY breaks out")
    assert [(c.id, c.reason) for c in first] == [("d0", "unseen")]
    again = entity_candidates(1, "AUDJPY again, higher")
    assert all(c.reason != "unseen" for c in again), "the same new form is not routed twice"
    other = entity_candidates(2, "NZDJPY joins in")
    assert [(c.id, c.reason) for c in other] == [("d2", "unseen")]


def test_the_evaluation_sample_goes_to_people_apart_from_selection(tmp_path: Path) -> None:
    """A uniform draw of the stream (a hash of the id), whatever the model thinks of it:
    every drawn document becomes an ``evaluation`` candidate for each task, at once, and
    never enters a selection window, so the test set does not look like the selection."""
    from loop.training.split import in_evaluation_sample

    scorer = entity_scorer(
        tmp_path,
        registry_dir=tmp_path / "registry",
        scorer=ScorerSettings(round_size=1000, evaluation_fraction=0.2),
    )
    docs = [Document(id=f"d{i}", text=f"stocks soar on USDJPY {i}") for i in range(200)]
    outputs = scorer.handle([record(i, encode(d), d.id) for i, d in enumerate(docs)])

    drawn = {d.id for d in docs if in_evaluation_sample(d.id, 0.2)}
    assert 25 < len(drawn) < 55
    picked = [decode(o.value, Candidate) for o in outputs if o.topic == "candidates"]
    assert {c.reason for c in picked} == {"evaluation"}
    assert {(c.id, c.task) for c in picked} == {
        (i, task) for i in drawn for task in ("classification", "entities")
    }
    classified = next(c for c in picked if c.task == "classification")
    assert classified.model_version == "v0001" and classified.probabilities
    entity = next(c for c in picked if c.task == "entities")
    assert [m.text for m in entity.spans] == ["USDJPY"]  # the served tags as the suggestion
    assert scorer.rounds is not None and scorer.entity_rounds is not None
    assert {doc.id for doc, _ in scorer.rounds.window} == {d.id for d in docs} - drawn
    assert {doc.id for doc, _ in scorer.entity_rounds.window} == {d.id for d in docs} - drawn
    assert sum(o.topic == "docs.tagged" for o in outputs) == 200  # every document is tagged


def test_selection_ranks_with_the_newest_version_even_before_it_is_promoted(
    tmp_path: Path,
) -> None:
    """v0001 serves and tags; v0002, which the gate has not promoted, knows the words of the
    'unsure' documents: the round ranks with v0002, so they are no longer the uncertain ones."""
    registry_dir = tmp_path / "registry"
    watcher = watcher_with_model(registry_dir)
    registry = ModelRegistry(registry_dir)
    newer = KeywordFactory().train(
        ["stocks soar", "shares rally", "market crash", "nothing here"],
        ["up", "up", "down", "down"],
        ClassifierConfig(),
    )
    registry.publish(newer.save, labels=newer.labels, kind="keywords")
    assert registry.promoted() == "v0001" and registry.latest() == "v0002"

    def round_with(select_with_newest: bool) -> list[Candidate]:
        settings = Settings(
            registry_dir=registry_dir,
            scorer=ScorerSettings(
                round_size=20,
                candidates_per_round=4,
                random_fraction=0.0,
                evaluation_fraction=0.0,
                select_with_newest=select_with_newest,
            ),
        )
        scorer = Scorer(settings, watcher, "w1", encoder=lambda texts: np.eye(len(texts), 384))
        scorer.refresh()
        unsure = [Document(id=f"unsure-{i}", text=f"nothing here {i}") for i in range(10)]
        torn = [Document(id=f"torn-{i}", text=f"stocks soar market crash {i}") for i in range(10)]
        docs = unsure + torn
        outputs = scorer.handle([record(i, encode(d), d.id) for i, d in enumerate(docs)])
        return [decode(o.value, Candidate) for o in outputs if o.topic == "candidates"]

    old = round_with(select_with_newest=False)
    assert {c.id.split("-")[0] for c in old} == {"unsure"}  # 50/50 for v0001
    new = round_with(select_with_newest=True)
    assert {c.id.split("-")[0] for c in new} == {"torn"}  # v0002 is sure of "nothing here"
    assert all(c.model_version == "v0001" for c in new)  # still tagged by the served one


def test_a_window_tagged_before_any_model_is_ranked_by_the_newest_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window still holds documents from before the first model (no version, embedded by
    the packaged encoder) when a newer version than the served one exists: ranking must not
    look up a version named None (it crashed the scorer on every replay)."""
    from loop.testing.classifier import KeywordClassifier

    def from_embeddings(self: KeywordClassifier, vectors: Any) -> Any:  # as SetFit's head
        return np.full((len(vectors), len(self.labels)), 1 / len(self.labels), np.float32)

    monkeypatch.setattr(
        KeywordClassifier, "predict_from_embeddings", from_embeddings, raising=False
    )
    registry_dir = tmp_path / "registry"
    registry = ModelRegistry(registry_dir)
    settings = Settings(
        registry_dir=registry_dir,
        scorer=ScorerSettings(
            window_size=100, round_size=10, candidates_per_round=2, evaluation_fraction=0.0
        ),
    )
    watcher = ModelWatcher(registry)
    scorer = Scorer(settings, watcher, "w1", encoder=lambda texts: np.ones((len(texts), 4)))
    early = [Document(id=f"early-{i}", text=f"nothing here {i}") for i in range(10)]
    scorer.handle([record(i, encode(d), d.id) for i, d in enumerate(early)])  # a cold round

    watcher_with_model(registry_dir)  # v0001, promoted
    newer = KeywordFactory().train(
        ["stocks soar", "nothing here"], ["up", "down"], ClassifierConfig()
    )
    registry.publish(newer.save, labels=newer.labels, kind="keywords")  # v0002, not promoted
    scorer.refresh()
    late = [Document(id=f"late-{i}", text=f"stocks soar {i}") for i in range(10)]
    outputs = scorer.handle([record(20 + i, encode(d), d.id) for i, d in enumerate(late)])
    picked = [decode(o.value, Candidate) for o in outputs if o.topic == "candidates"]
    assert len(picked) == 2


def dead_letters(outputs: list[Any]) -> dict[bytes, str]:
    """Dead letters by their value, with their reason."""
    return {
        out.value: dict(out.headers)["alloop.error"].decode()
        for out in outputs
        if out.topic == "docs.raw.dlq"
    }


def tagged_ids(outputs: list[Any]) -> list[str]:
    return sorted(decode(o.value, TaggedDocument).id for o in outputs if o.topic == "docs.tagged")


def test_poison_that_decodes_badly_is_dead_lettered_and_the_batch_goes_on(tmp_path: Path) -> None:
    scorer = Scorer(Settings(), watcher_with_model(tmp_path), "w1")
    poison = [
        b"[" * 100_000,  # json.loads overflows the stack on it
        b'{"schema": "document", "id": "p2", "text": "t", "metadata": {"k": "\\ud800"}}',
        b'{"schema": "document", "id": "p3", "text": "lone \\udfff surrogate"}',
    ]
    good = [Document(id=f"g{i}", text="stocks soar") for i in range(3)]
    records = [record(0, encode(good[0]), "g0")]
    records += [record(1 + i, value, f"p{1 + i}") for i, value in enumerate(poison)]
    records += [record(9 + i, encode(d), d.id) for i, d in enumerate(good[1:])]
    outputs = scorer.handle(records)
    assert set(dead_letters(outputs)) == set(poison)
    assert all("not JSON" in reason for reason in dead_letters(outputs).values())
    assert tagged_ids(outputs) == ["g0", "g1", "g2"]


def test_a_poison_document_is_dead_lettered_with_its_own_bytes_whatever_its_key(
    tmp_path: Path,
) -> None:
    watcher = ModelWatcher(ModelRegistry(tmp_path))
    watcher._served = ServedModel("v0009", Exploding())
    scorer = Scorer(Settings(), watcher, "w1")
    fine = encode(Document(id="d0", text="fine"))
    no_key = encode(Document(id="d1", text="poison pill"))
    other_key = encode(Document(id="d2", text="more poison"))
    records = [
        record(0, fine, "d0"),
        Record("docs.raw", 0, 1, None, no_key, []),
        record(2, other_key, "not-its-id"),
    ]
    outputs = scorer.handle(records)
    assert set(dead_letters(outputs)) == {no_key, other_key}
    assert tagged_ids(outputs) == ["d0"]


def test_a_document_whose_tagged_copy_is_too_large_is_dead_lettered_alone(
    tmp_path: Path,
) -> None:
    scorer = entity_scorer(
        tmp_path,
        kafka=KafkaSettings(max_request_size=16_384),
        scorer=ScorerSettings(round_size=1, random_fraction=0.0),
    )
    big = encode(Document(id="big", text="$AAPL " * 1_000))  # 6 kB in, 1,000 entities out
    assert len(big) < 16_384
    records = [record(0, big, "big"), record(1, encode(Document(id="ok", text="AUDJPY up")), "ok")]
    outputs = scorer.handle(records)
    [reason] = dead_letters(outputs).values()
    assert dead_letters(outputs) == {big: reason}
    assert "docs.tagged message made from it is" in reason and "16384" in reason
    assert tagged_ids(outputs) == ["ok"]
    candidates = [decode(o.value, Candidate).id for o in outputs if o.topic == "candidates"]
    assert "big" not in candidates and "ok" in candidates
    assert all(out.size() <= 16_384 for out in outputs)


def test_a_window_that_drifted_is_announced_on_the_models_topic(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path / "home",
        drift=DriftSettings(enabled=True, window_size=20, reference_windows=1, permutations=300),
    )
    scorer = Scorer(settings, watcher_with_model(tmp_path / "registry"), "w1")
    texts = ["stocks soar"] * 40 + ["market crash"] * 20  # the predicted mix turns over
    docs = [Document(id=f"d{i}", text=f"{t} {i}") for i, t in enumerate(texts)]
    events = []
    for start in range(0, 60, 15):
        batch = [record(i, encode(d), d.id) for i, d in enumerate(docs[start : start + 15])]
        outputs = scorer.handle(batch)
        assert sum(o.topic == "docs.tagged" for o in outputs) == len(batch)
        events += [decode(o.value, ModelEvent) for o in outputs if o.topic == "models"]
    assert len(events) == 1, "the quiet window after the reference stays quiet"
    event = events[0]
    assert event.event == "drift" and event.version == "v0001"
    assert event.drift is not None and event.drift["window"] == 2
    assert event.drift["drift"] is True and "label-mix" in event.drift["crossed"]
    assert event.drift["label-mix"]["score"] > event.drift["label-mix"]["threshold"]
    stored = DriftStore(settings.drift_path).history()
    assert [r.window for r in stored] == [1, 2] and [r.drift for r in stored] == [False, True]


def test_a_scorer_without_drift_windows_writes_no_drift_store(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", drift=DriftSettings(enabled=True))
    scorer = Scorer(settings, watcher_with_model(tmp_path / "registry"), "w1")
    scorer.handle([record(0, encode(Document(id="d1", text="stocks soar")), "d1")])
    assert scorer.drift is not None and not settings.drift_path.exists()
    off = Settings(home=tmp_path / "home", drift=DriftSettings(enabled=False))
    assert Scorer(off, watcher_with_model(tmp_path / "other"), "w1").drift is None


def test_entities_are_found_beside_the_classifier_and_kept_for_the_documents_it_scored(
    tmp_path: Path,
) -> None:
    """The entity scan runs in its own thread while the classifier scores (both encoders
    busy at once); a document the classifier dead-letters drops out, and every other one
    gets its own entities, not a neighbour's."""
    scorer = entity_scorer(tmp_path)
    assert scorer.entities is not None and scorer.entities.watcher is not None
    scorer.watcher._served = ServedModel("v0009", Exploding())
    threads: list[str] = []

    class Recording(BrokenOn):
        def predict(self, texts: list[str], batch_size: int = 32) -> list[list[Any]]:
            threads.append(threading.current_thread().name)
            return [[make_span(t, 0, 6, "FOREX")] if t.startswith("AUD") else [] for t in texts]

    scorer.entities.watcher._served = ServedExtractor("v0004", Recording("never"))  # type: ignore[arg-type]
    texts = ["AUDJPY fine", "poison pill", "flat day", "AUDUSD ok"]
    docs = [Document(id=f"d{i}", text=t) for i, t in enumerate(texts)]
    outputs = scorer.handle([record(i, encode(d), d.id) for i, d in enumerate(docs)])
    tagged = {
        t.id: t
        for t in (decode(o.value, TaggedDocument) for o in outputs if o.topic == "docs.tagged")
    }
    assert sorted(tagged) == ["d0", "d2", "d3"]
    assert [d.key for d in outputs if d.topic == "docs.raw.dlq"] == ["d1"]
    assert [e.text for e in tagged["d0"].entities] == ["AUDJPY"]
    assert tagged["d2"].entities == []
    assert [e.text for e in tagged["d3"].entities] == ["AUDUSD"]
    assert threads and all(name.startswith("entity-tagger") for name in threads)


def test_a_batch_the_classifier_dead_letters_whole_leaves_no_entity_scan_running(
    tmp_path: Path,
) -> None:
    """The scan started beside the classifier is finished before the batch's outputs are
    returned, even when no document survives the classifier: a batch's work must not run on
    into the next one's."""
    scorer = entity_scorer(tmp_path)
    assert scorer.entities is not None and scorer.entities.watcher is not None
    scorer.watcher._served = ServedModel("v0009", Exploding())
    release = threading.Event()
    finished: list[str] = []

    class Slow(BrokenOn):
        def predict(self, texts: list[str], batch_size: int = 32) -> list[list[Any]]:
            release.wait(5)
            finished.extend(texts)
            return [[] for _ in texts]

    scorer.entities.watcher._served = ServedExtractor("v0004", Slow("never"))  # type: ignore[arg-type]
    docs = [Document(id=f"d{i}", text=f"poison {i}") for i in range(2)]
    threading.Timer(0.3, release.set).start()
    outputs = scorer.handle([record(i, encode(d), d.id) for i, d in enumerate(docs)])
    assert sorted(o.key for o in outputs if o.topic == "docs.raw.dlq") == ["d0", "d1"]
    assert set(finished) == {"poison 0", "poison 1"}


def test_the_running_scorer_gives_free_memory_back_after_every_batch_even_a_failed_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import workers.scorer

    released: list[int] = []
    monkeypatch.setattr(workers.scorer, "release_free_memory", lambda: released.append(1))
    scorer = entity_scorer(tmp_path)
    docs = [Document(id=f"d{i}", text=f"AUDJPY {i}") for i in range(3)]
    outputs = scorer.handle_and_release([record(i, encode(d), d.id) for i, d in enumerate(docs)])
    assert sorted(o.key for o in outputs if o.topic == "docs.tagged") == ["d0", "d1", "d2"]
    assert released == [1]

    def broken(records: list[Any]) -> list[Any]:
        raise ConnectionError("broker gone")

    monkeypatch.setattr(scorer, "handle", broken)
    with pytest.raises(ConnectionError):
        scorer.handle_and_release([])
    assert released == [1, 1]
