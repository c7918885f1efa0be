"""The scorer's batch handling with a fake model and fake records (no broker)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np

from loop.messages import Document, TaggedDocument, decode, encode
from loop.models.base import ClassifierConfig
from loop.registry import ModelRegistry
from loop.serving import ModelWatcher, ServedModel
from loop.settings import Settings
from loop.testing import KeywordFactory
from workers.scorer import Scorer


class Record(NamedTuple):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


def record(offset: int, value: bytes | None, key: str = "k") -> Record:
    return Record("docs.raw", 0, offset, key.encode(), value, [("trace", b"abc")])


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


def test_uncertain_and_random_slice_documents_become_candidates(tmp_path: Path) -> None:
    from loop.messages import Candidate
    from loop.settings import ScorerSettings

    settings = Settings(scorer=ScorerSettings(uncertainty_threshold=0.7, random_rate=0.05))
    scorer = Scorer(settings, watcher_with_model(tmp_path), "w1")
    sure = [Document(id=f"sure-{i}", text="stocks soar shares rally") for i in range(200)]  # 0.83
    unsure = Document(id="unsure", text="nothing here")  # no keyword: 50/50
    docs = [*sure, unsure]
    outputs = scorer.handle([record(i, encode(d), d.id) for i, d in enumerate(docs)])
    picked = [decode(o.value, Candidate) for o in outputs if o.topic == "candidates"]
    by_reason: dict[str, list[str]] = {}
    for c in picked:
        by_reason.setdefault(c.reason, []).append(c.id)
    assert by_reason["uncertain"] == ["unsure"]
    assert 2 <= len(by_reason["random"]) <= 25  # about 5 % of 200
    assert all(c.model_version == "v0001" for c in picked)
    again = scorer.handle([record(i, encode(d), d.id) for i, d in enumerate(docs)])
    assert [o.value for o in again if o.topic == "candidates"] == [
        o.value for o in outputs if o.topic == "candidates"
    ]  # a replay picks the same documents


def test_no_candidates_when_switched_off(tmp_path: Path) -> None:
    from loop.settings import ScorerSettings

    settings = Settings(scorer=ScorerSettings(candidates=False, uncertainty_threshold=1.0))
    scorer = Scorer(settings, watcher_with_model(tmp_path), "w1")
    outputs = scorer.handle([record(0, encode(Document(id="d", text="x y")), "d")])
    assert [o.topic for o in outputs] == ["docs.tagged"]
