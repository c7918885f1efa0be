"""The labeler's batch handling with an in-memory queue in place of Argilla (the real Argilla
path is tested in tests/integration/argilla)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from connectors.argilla.datasets import record_for
from loop.messages import Candidate, EntityMention, encode
from loop.testing.records import MemoryQueue, Record
from tests.messages import entity_candidate
from workers.labeler import Labeler


def candidate(doc: str, score: float, reason: str = "uncertain") -> Candidate:
    return Candidate(
        id=doc,
        text=f"text {doc}",
        model_version="v0002",
        strategy="least-confidence",
        score=score,
        reason=reason,  # type: ignore[arg-type]
        probabilities={"up": 1 - score, "down": score},
    )


def batch(*candidates: Candidate) -> list[Record]:
    return [
        Record("candidates", 0, i, c.id.encode(), encode(c), []) for i, c in enumerate(candidates)
    ]


def test_candidates_become_records_keyed_by_document_id() -> None:
    queue = MemoryQueue()
    labeler = Labeler(queue, budget=10, worker_id="l1")  # type: ignore[arg-type]
    assert labeler.handle(batch(candidate("d1", 0.4), candidate("d2", 0.3))) == []
    assert set(queue.stored) == {"d1", "d2"}
    labeler.handle(batch(candidate("d1", 0.45)))  # a replay, or a re-score: an update
    assert set(queue.stored) == {"d1", "d2"}
    assert queue.stored["d1"].metadata["score"] == 0.45


def test_the_budget_swaps_the_weakest_untouched_record() -> None:
    queue = MemoryQueue(started={"d1"})
    labeler = Labeler(queue, budget=2, worker_id="l1")  # type: ignore[arg-type]
    labeler.handle(batch(candidate("d1", 0.1), candidate("d2", 0.2)))
    labeler.handle(batch(candidate("d3", 0.5), candidate("d4", 0.05)))
    assert set(queue.stored) == {"d1", "d3"}  # d1 is being worked on
    assert labeler.removed == 1


def test_a_broken_candidate_goes_to_the_dead_letter_topic() -> None:
    queue = MemoryQueue()
    labeler = Labeler(queue, budget=10, worker_id="l1")  # type: ignore[arg-type]
    bad = Record("candidates", 0, 7, b"x", b'{"schema": "candidate", "id": "x"}', [])
    [dead] = labeler.handle([bad, *batch(candidate("d1", 0.4))])
    assert dead.topic == "candidates.dlq"
    assert "invalid candidate" in dict(dead.headers)["alloop.error"].decode()
    assert set(queue.stored) == {"d1"}


def test_a_record_carries_the_suggestion_and_selection_metadata() -> None:
    record = record_for(candidate("d9", 0.42, reason="random"), [0.1, 0.2])
    [suggestion] = list(record.suggestions)
    assert (suggestion.value, suggestion.agent) == ("up", "v0002")
    assert suggestion.score == 0.58
    assert record.metadata["reason"] == "random"
    assert record.metadata["strategy"] == "least-confidence"
    assert record.id == "d9"
    assert record.vectors["embedding"] == [0.1, 0.2]


def test_an_entity_candidate_suggests_its_spans_with_their_scores() -> None:
    text = "AUDJPY 🚀 and $TSLA"
    spans = [
        EntityMention(label="FOREX", start=0, end=6, text="AUDJPY", score=0.9),
        EntityMention(label="STOCK", start=14, end=19, text="$TSLA", score=0.95),
    ]
    entity = entity_candidate("e1", text, spans=spans)
    record = record_for(entity, None)
    [suggestion] = list(record.suggestions)
    assert suggestion.question_name == "spans" and suggestion.agent == "patterns"
    assert suggestion.value == [
        {"label": "FOREX", "start": 0, "end": 6},
        {"label": "STOCK", "start": 14, "end": 19},
    ]
    assert suggestion.score == [0.9, 0.95]
    assert record.metadata["task"] == "entities" and record.metadata["reason"] == "unseen"


class Refused(Exception):
    """What the Argilla SDK raises for a 422 (it carries the status code)."""

    status_code = 422


@dataclass
class StrictQueue(MemoryQueue):
    """Refuses a whole write, as Argilla does, when one record suggests an unknown label."""

    labels: tuple[str, ...] = ("up", "down")

    def write(self, task: str, records: list[Any]) -> None:
        for record in records:
            for suggestion in record.suggestions:
                if suggestion.value not in self.labels:
                    raise Refused(f"suggestion value {suggestion.value!r} is not a valid label")
        super().write(task, records)


def test_a_candidate_argilla_refuses_is_dead_lettered_alone() -> None:
    queue = StrictQueue()
    labeler = Labeler(queue, budget=10, worker_id="l1")  # type: ignore[arg-type]
    stranger = candidate("d2", 0.3)
    stranger = stranger.model_copy(update={"probabilities": {"sideways": 0.9, "up": 0.1}})
    records = batch(candidate("d1", 0.4), stranger, candidate("d3", 0.2))
    [dead] = labeler.handle(records)
    assert dead.topic == "candidates.dlq" and dead.value == records[1].value
    assert "'sideways' is not a valid label" in dict(dead.headers)["alloop.error"].decode()
    assert set(queue.stored) == {"d1", "d3"}
    assert labeler.written == 2


def test_an_unreachable_argilla_stops_the_batch_instead_of_dead_lettering_it() -> None:
    class Down(MemoryQueue):
        def write(self, task: str, records: list[Any]) -> None:
            raise ConnectionError("Argilla is down")

    labeler = Labeler(Down(), budget=10, worker_id="l1")  # type: ignore[arg-type]
    with pytest.raises(ConnectionError):  # nothing is committed: the batch is retried
        labeler.handle(batch(candidate("d1", 0.4)))


def test_a_misfit_candidate_is_dead_lettered_with_its_own_bytes_whatever_its_key() -> None:
    labeler = Labeler(MemoryQueue(), budget=10, worker_id="l1")  # type: ignore[arg-type]
    fine = candidate("d1", 0.4)
    misfit = candidate("d2", 0.3).model_copy(update={"multi_label": True})
    records = [
        Record("candidates", 0, 0, b"d1", encode(fine), []),
        Record("candidates", 0, 1, None, encode(misfit), []),
    ]
    [dead] = labeler.handle(records)
    assert dead.value == encode(misfit)
