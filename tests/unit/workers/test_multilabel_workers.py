"""Multi-label classification in the workers: the Argilla suggestions, answers read back,
the oracle's label sets, the scorer's tags. The question itself, and the round trip through
the real Argilla, are in tests/integration/argilla/test_multilabel_loop.py."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.argilla.answers import label_event
from connectors.argilla.datasets import record_for
from connectors.argilla.oracle import Gold
from loop.classification.serving import ServedModel
from loop.errors import InputError
from loop.messages import Candidate, Document
from loop.selection.base import SelectionConfig
from loop.selection.windows import CandidateRounds
from loop.testing.classifier import KeywordClassifier
from tests.unit.connectors.argilla.test_oracle import FakeArgilla, oracle_for
from workers.scorer import tag

RECORD = {
    "id": "rec-1",
    "external_id": "doc-1",
    "fields": {"text": "I lost my card and need a new pin"},
    "metadata": {"reason": "uncertain", "model_version": "v0002", "task": "classification"},
}


def event(value: Any) -> Any:
    return label_event(
        response_id="resp-1",
        status="submitted",
        values={"label": {"value": value}},
        record=RECORD,
        dataset_name="alloop-classification",
        annotator="annotator",
        updated_at="2026-12-01T09:00:00",
        prefix="alloop",
    )


def multi_label_candidate(
    doc: str, text: str, version: str, probabilities: dict[str, float], score: float = 0.5
) -> Candidate:
    return Candidate(
        id=doc,
        text=text,
        model_version=version,
        strategy="breaking-ties",
        score=score,
        reason="uncertain",
        probabilities=probabilities,
        multi_label=True,
    )


def test_a_multi_label_candidate_suggests_the_labels_that_apply_with_their_scores() -> None:
    base = multi_label_candidate(
        "d1", "lost card, new pin", "v0003", {"card": 0.91, "fee": 0.2, "pin": 0.55}, score=0.9
    )
    [suggestion] = list(record_for(base, None).suggestions)
    assert suggestion.value == ["card", "pin"] and suggestion.score == [0.91, 0.55]
    assert suggestion.agent == "v0003"
    nothing = base.model_copy(update={"probabilities": {"card": 0.1, "pin": 0.3}})
    assert list(record_for(nothing, None).suggestions) == []  # no label applies: no hint


def test_a_list_answer_becomes_a_label_set() -> None:
    answer = event(["pin", "card"])
    assert (answer.labels, answer.label, answer.id) == (["card", "pin"], None, "doc-1")
    assert event("card").labels is None and event("card").label == "card"


@pytest.mark.parametrize("value", [["card", ""], ["card", 3], None])
def test_a_malformed_label_set_is_refused_with_the_reason(value: Any) -> None:
    with pytest.raises(InputError, match="'label'"):
        event(value)


def test_the_oracle_answers_label_sets_and_discards_an_empty_one() -> None:
    gold = Gold(
        [
            Document(id="d1", text="lost card new pin", labels=["pin", "card"]),
            Document(id="d2", text="hello there", labels=[]),
        ]
    )
    fake = FakeArgilla(
        [
            {"id": "r1", "external_id": "d1", "fields": {"text": "lost card new pin"}},
            {"id": "r2", "external_id": "d2", "fields": {"text": "hello there"}},
        ],
        question="multi_label_selection",
    )
    tally = oracle_for(fake, gold).run()
    assert fake.answers == [
        ("r1", {"values": {"label": {"value": ["card", "pin"]}}, "status": "submitted"}),
        ("r2", {"status": "discarded"}),
    ]
    assert (tally.submitted, tally.discarded, tally.by_label) == (1, 1, {"card": 1, "pin": 1})


MULTI = KeywordClassifier(
    ["card", "fee", "pin"],
    {"card": {"card": 9, "fee": 1, "\x00seen": 10}, "pin": {"pin": 6, "\x00seen": 10}},
    multi_label=True,
)


def test_the_scorer_tags_every_label_that_applies_and_sends_multi_label_candidates() -> None:
    docs = [Document(id="a", text="pin card"), Document(id="b", text="weather today")]
    tagged, _ = tag(docs, ServedModel("v0004", MULTI), batch_size=8)
    # card 9/11 = 0.818, pin 6/11 = 0.545, fee 1/11: card and pin apply, the likeliest first
    assert (tagged[0].labels, tagged[0].label) == (["card", "pin"], "card")
    assert tagged[0].probabilities == {"card": 0.8182, "fee": 0.0909, "pin": 0.5455}
    assert (tagged[1].labels, tagged[1].label) == ([], None)  # no label applies
    rounds = CandidateRounds(
        SelectionConfig(batch_size=1, random_fraction=0, diversity=False, rare_examples=0),
        window_size=10,
        round_size=2,
        labelled=lambda version: {"card": 10, "fee": 10, "pin": 10},
    )
    [picked] = rounds.add(tagged, None)
    # "pin card" has pin at 0.545, the label nearest 0.5 in the window
    assert (picked.id, picked.multi_label, picked.model_version) == ("a", True, "v0004")


def test_a_candidate_of_the_other_kind_is_dead_lettered_with_the_fix() -> None:
    from loop.messages import encode
    from loop.testing.records import MemoryQueue, Record
    from workers.labeler import Labeler

    multi = multi_label_candidate("m1", "lost card", "v0007", {"card": 0.9, "pin": 0.4})
    single = multi.model_copy(update={"id": "s1", "multi_label": False})
    queue = MemoryQueue()
    labeler = Labeler(queue, budget=10, worker_id="w", multi_label=False)  # type: ignore[arg-type]
    records = [
        Record("candidates", 0, i, c.id.encode(), encode(c), [])
        for i, c in enumerate([multi, single])
    ]
    [dead] = labeler.handle(records)
    assert dead.topic == "candidates.dlq" and dead.key == "m1"
    reason = dict(dead.headers)["alloop.error"].decode()
    assert (
        "multi-label candidate (model v0007)" in reason
        and "ALLOOP_CLASSIFICATION__MULTI_LABEL" in reason
    )
    assert set(queue.stored) == {"s1"}  # the rest of the batch is written


def test_gold_answers_take_the_shape_of_the_question() -> None:
    from connectors.argilla.oracle import fit_question

    assert fit_question("card", "multi_label") == ["card"]
    assert fit_question(["card"], "label") == "card"
    assert fit_question(["card", "pin"], "label") is None  # no single gold label
    assert fit_question([], "label") is None
    spans = [{"label": "FOREX", "start": 0, "end": 6}]
    assert fit_question(spans, "spans") == spans
