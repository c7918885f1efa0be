"""The scorer's, labeler's and trainer's batch handlers over generated batches (Hypothesis):
poison interleaved with valid messages, keys missing or shared. Each handler dead-letters
exactly the poison, each dead letter with its own bytes and a reason, and handles the rest."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.outputs import Output
from loop.entities.base import Example, ExtractorConfig, make_span
from loop.entities.serving import ServedExtractor
from loop.labels import LabelStore
from loop.messages import Candidate, Document, LabelEvent, TaggedDocument, decode, encode
from loop.settings import EntitySettings, KafkaSettings, ScorerSettings, Settings
from loop.testing.extractor import GazetteerFactory
from loop.testing.records import MemoryQueue, Record
from tests.strategies import Item, batches
from tests.unit.workers.test_scorer_handle import watcher_with_model
from workers.labeler import Labeler
from workers.scorer import Scorer
from workers.trainer import LabelIntake

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,  # the model and stores are meant to be shared
    ],
)
MAX_BYTES = 4_096  # the producer's max request size in these tests


def records(topic: str, items: Sequence[Item], start: int) -> list[Record]:
    return [
        Record(topic, 0, start + i, item.key, item.value, [("trace", b"t")])
        for i, item in enumerate(items)
    ]


def check_dead_letters(
    batch: list[Record], outputs: list[Output], poison: set[int], dlq: str
) -> dict[int, str]:
    """Exactly the poison offsets are dead-lettered, each once, with its own key, bytes and
    headers and a reason; return the reasons by offset."""
    by_offset = {r.offset: r for r in batch}
    reasons: dict[int, str] = {}
    for out in outputs:
        if out.topic != dlq:
            continue
        headers = dict(out.headers)
        offset = int(headers["alloop.source"].decode().rsplit("/", 1)[1])
        assert offset not in reasons, f"offset {offset} dead-lettered twice"
        original = by_offset[offset]
        if "alloop.value-bytes" in headers:  # too large to produce again: its length says so
            assert out.value == b"" and len(original.value or b"") > MAX_BYTES // 2
            assert headers["alloop.value-bytes"] == str(len(original.value or b"")).encode()
        else:
            assert out.value == (original.value or b""), "a dead letter lost its own bytes"
        assert out.key == (
            None if original.key is None else original.key.decode("utf-8", "replace")
        )
        assert headers["trace"] == b"t"
        reasons[offset] = headers["alloop.error"].decode()
        assert reasons[offset], "a dead letter without a reason"
    assert set(reasons) == poison, {o: reasons.get(o) for o in set(reasons) ^ poison}
    return reasons


@pytest.fixture(scope="module")
def scorer(tmp_path_factory: pytest.TempPathFactory) -> Scorer:
    """A scorer with a keyword model, the entity patterns and a served entity version,
    candidates on, and a small max request size."""
    root = tmp_path_factory.mktemp("fuzz-scorer")
    settings = Settings(
        home=root / "home",
        kafka=KafkaSettings(max_request_size=MAX_BYTES),
        scorer=ScorerSettings(round_size=5, random_fraction=0.2),
        entities=EntitySettings(enabled=True),
    )
    scorer = Scorer(settings, watcher_with_model(root / "registry"), "fuzz")
    assert scorer.entities is not None and scorer.entities.watcher is not None
    taught = "USDJPY and earnings"
    version = GazetteerFactory().train(
        [Example(taught, (make_span(taught, 0, 6, "FOREX"),))], ExtractorConfig()
    )
    scorer.entities.watcher._served = ServedExtractor("v0001", version)
    return scorer


@st.composite
def scorer_batches(draw: st.DrawFn) -> list[Item]:
    """Documents and poison, and now and then a document whose tagged copy is too large."""
    items = draw(batches(Document))
    if draw(st.booleans()):
        big = Document(id="big", text="USDJPY $AAPL " * draw(st.integers(60, 400)))
        at = draw(st.integers(0, len(items)))
        items.insert(at, Item(b"big", encode(big), "too large to tag"))
    return items


OFFSETS = iter(range(0, 10**9, 1_000))  # every example its own offsets


@FUZZ
@given(items=scorer_batches())
def test_the_scorer_dead_letters_exactly_the_poison_and_tags_the_rest(
    scorer: Scorer, items: list[Item]
) -> None:
    batch = records("docs.raw", items, next(OFFSETS))
    outputs = scorer.handle(batch)
    poison = {r.offset for r, item in zip(batch, items, strict=True) if item.poison}
    check_dead_letters(batch, outputs, poison, "docs.raw.dlq")
    tagged = [o for o in outputs if o.topic == "docs.tagged"]
    good = [r for r in batch if r.offset not in poison]
    assert sorted(o.source.offset for o in tagged) == [r.offset for r in good]
    for out in tagged:
        doc = decode(out.source.value, Document)
        copy = decode(out.value, TaggedDocument)
        assert (out.key, copy.id, copy.text, copy.metadata) == (
            doc.id,
            doc.id,
            doc.text,
            doc.metadata,
        )
        assert copy.model_version == "v0001" and copy.entity_version == "v0001"
        assert all(copy.text[e.start : e.end] == e.text for e in copy.entities)
    for out in outputs:
        assert out.topic in {"docs.tagged", "candidates", "docs.raw.dlq"}
        assert out.size() <= MAX_BYTES


@FUZZ
@given(items=batches(Candidate))
def test_the_labeler_dead_letters_exactly_the_poison_and_writes_the_rest(
    items: list[Item],
) -> None:
    queue = MemoryQueue()
    labeler = Labeler(queue, budget=10**6, worker_id="fuzz")  # type: ignore[arg-type]
    batch = records("candidates", items, 0)
    outputs = labeler.handle(batch)
    good = [
        (r, decode(r.value, Candidate))
        for r, item in zip(batch, items, strict=True)
        if not item.poison
    ]
    # a multi-label candidate does not fit a single-label dataset: it is refused too
    misfits = {r.offset for r, c in good if c.probabilities and c.multi_label}
    poison = {r.offset for r, item in zip(batch, items, strict=True) if item.poison}
    reasons = check_dead_letters(batch, outputs, poison | misfits, "candidates.dlq")
    assert all("multi-label candidate" in reasons[o] for o in misfits)
    assert set(queue.stored) == {c.id for r, c in good if r.offset not in misfits}


@FUZZ
@given(items=batches(LabelEvent), more=batches(LabelEvent))
def test_the_trainer_dead_letters_exactly_the_poison_and_keeps_every_answer(
    tmp_path: Path, items: list[Item], more: list[Item]
) -> None:
    path = tmp_path / f"labels-{next(OFFSETS)}.db"
    intake = LabelIntake(LabelStore(path), "fuzz")
    for number, part in enumerate((items, more)):
        batch = records("labels", part, number * 1_000)
        outputs = intake.handle(batch)
        poison = {r.offset for r, item in zip(batch, part, strict=True) if item.poison}
        check_dead_letters(batch, outputs, poison, "labels.dlq")
        assert [o for o in outputs if o.topic != "labels.dlq"] == []
    good = [decode(i.value, LabelEvent) for i in (*items, *more) if not i.poison]
    held = {a.response_id: a for a in intake.store.answers()}
    assert set(held) == {e.response_id for e in good}
    # what was stored is what a restarted trainer reads back: no answer lost on the way
    reread = {a.response_id: a for a in LabelStore(path).answers()}
    assert reread == held
