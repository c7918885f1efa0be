"""The label store: idempotent by response id, edits replace, agreement decides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from loop.labels import LabelStore
from loop.messages import EntityMention, LabelEvent

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def answer(
    doc: str,
    label: str | None,
    response: str,
    *,
    status: str = "submitted",
    minutes: int = 0,
    annotator: str = "ann",
    origin: str | None = None,
) -> LabelEvent:
    return LabelEvent(
        id=doc,
        text=f"text of {doc}",
        label=label,
        status=status,  # type: ignore[arg-type]
        response_id=response,
        annotator=annotator,
        origin=origin,
        labelled_at=T0 + timedelta(minutes=minutes),
    )


def test_a_redelivered_answer_is_a_no_op(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "labels.db")
    assert store.add([answer("d1", "up", "r1")]) == 1
    assert store.add([answer("d1", "up", "r1")]) == 0
    assert len(store) == 1
    assert len(LabelStore(tmp_path / "labels.db")) == 1


def test_an_edited_response_replaces_the_old_answer(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "labels.db")
    store.add([answer("d1", "up", "r1")])
    store.add([answer("d1", "down", "r1", minutes=5)])
    store.add([answer("d1", "up", "r1", minutes=1)])  # an older copy arriving late
    [resolved] = store.labelled()
    assert resolved.label == "down"


def legacy_file(path: Path, *events: LabelEvent, torn: str = "") -> Path:
    """A JSON Lines label store as alloop wrote it before the SQLite one, maybe torn."""
    lines = b"".join(e.model_dump_json(by_alias=True).encode() + b"\n" for e in events)
    path.write_bytes(lines + torn.encode())
    return path


def test_the_store_survives_a_restart_and_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "labels.db"
    legacy_file(
        tmp_path / "labels.jsonl",
        answer("d1", "up", "r1"),
        answer("d2", "down", "r2"),
        torn='{"schema": "label", "id": "d3", "te',  # crash mid-write
    )
    again = LabelStore(path)
    assert [(r.id, r.label) for r in again.labelled()] == [("d1", "up"), ("d2", "down")]
    assert again.add([answer("d1", "up", "r1")]) == 0


def test_an_answer_added_after_a_torn_last_line_survives_the_next_restart(
    tmp_path: Path,
) -> None:
    path = tmp_path / "labels.db"
    legacy_file(
        tmp_path / "labels.jsonl",
        answer("d1", "up", "r1"),
        torn='{"schema": "label", "id": "d2", "te',  # crash mid-write, no newline
    )
    store = LabelStore(path)
    assert store.add([answer("d3", "down", "r3")]) == 1
    again = LabelStore(path)
    assert again.get("r3") is not None, "the answer written after the fragment was lost"
    assert sorted(r.id for r in again.labelled()) == ["d1", "d3"]
    assert LabelStore(path).add([answer("d3", "down", "r3")]) == 0


def test_a_discarded_record_is_kept_as_discarded(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "labels.db")
    store.add([answer("d1", None, "r1", status="discarded")])
    [resolved] = store.resolve()
    assert resolved.status == "discarded"
    assert resolved.label is None
    assert store.labelled() == []


def test_several_annotators_agree_by_majority_with_a_score(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "labels.db", min_submitted=3)
    store.add([answer("d1", "up", "r1", annotator="a"), answer("d1", "up", "r2", annotator="b")])
    [waiting] = store.resolve()
    assert waiting.status == "waiting"  # two of the three answers needed

    store.add([answer("d1", "down", "r3", annotator="c")])
    [resolved] = store.resolve()
    assert (resolved.label, resolved.status) == ("up", "labelled")
    assert resolved.agreement == pytest.approx(2 / 3, abs=1e-4)


def test_a_tie_is_disputed_and_not_trained_on(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "labels.db", min_submitted=2)
    store.add([answer("d1", "up", "r1", annotator="a"), answer("d1", "down", "r2", annotator="b")])
    [resolved] = store.resolve()
    assert resolved.status == "disputed"
    assert resolved.agreement == 0.5
    assert store.labelled() == []


def test_resolve_filters_by_task_and_keeps_the_origin(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "labels.db")
    ner = answer("d2", "x", "r2").model_copy(update={"task": "entities"})
    store.add([answer("d1", "up", "r1", origin="random"), ner])
    [only] = store.resolve("classification")
    assert (only.id, only.origin) == ("d1", "random")


def test_the_same_answer_seen_by_webhook_and_by_poll_is_kept_once(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "labels.db")
    by_webhook = answer("d1", "up", "r1", annotator="maria")
    naive = by_webhook.labelled_at.replace(tzinfo=None)  # Argilla's times come without a zone
    by_poll = by_webhook.model_copy(update={"annotator": "user-uuid"})
    by_poll = LabelEvent.model_validate({**by_poll.model_dump(), "labelled_at": naive})
    assert store.add([by_webhook]) == 1
    assert store.add([by_poll]) == 0


def spans_answer(doc: str, response: str, *spans: tuple[int, int, str]) -> LabelEvent:
    text = "AUDJPY and USDJPY"
    return LabelEvent(
        id=doc,
        text=text,
        task="entities",
        spans=[EntityMention(label=lb, start=s, end=e, text=text[s:e]) for s, e, lb in spans],
        response_id=response,
        labelled_at=T0,
    )


def test_entity_answers_agree_on_the_whole_set_of_spans(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "labels.db", min_submitted=2)
    store.add(
        [
            spans_answer("d1", "r1", (0, 6, "FOREX"), (11, 17, "FOREX")),
            spans_answer("d1", "r2", (11, 17, "FOREX"), (0, 6, "FOREX")),
            spans_answer("d2", "r3", (0, 6, "FOREX")),
            spans_answer("d2", "r4", (0, 6, "STOCK")),
            spans_answer("d3", "r5"),
            spans_answer("d3", "r6"),
        ]
    )
    resolved = {r.id: r for r in LabelStore(store.path, min_submitted=2).resolve("entities")}
    assert resolved["d1"].status == "labelled" and resolved["d1"].agreement == 1.0
    assert [m.text for m in resolved["d1"].spans or ()] == ["AUDJPY", "USDJPY"]
    assert resolved["d2"].status == "disputed" and resolved["d2"].spans is None
    assert resolved["d3"].status == "labelled" and resolved["d3"].spans == (), (
        "no entity is an answer"
    )
