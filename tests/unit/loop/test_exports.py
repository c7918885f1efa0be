"""Exports of the label store: every format carries the agreement and the origin, and reads
back as a seed file with the same answers."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from loop.entities.conll import read_labelled
from loop.errors import InputError
from loop.exports import Format, export
from loop.labels import LabelStore, ResolvedLabel
from loop.messages import EntityMention, LabelEvent
from loop.readers import Columns, read_documents


def mention(text: str, surface: str, label: str) -> EntityMention:
    start = text.index(surface)
    return EntityMention(label=label, start=start, end=start + len(surface), text=surface)


def store_with(tmp_path: Path, events: list[LabelEvent]) -> LabelStore:
    store = LabelStore(tmp_path / "labels.db")
    store.add(events)
    return store


def classes(tmp_path: Path) -> list[ResolvedLabel]:
    """Two annotators agree on d1; two out of three on d2 (agreement 0.67); d3 is disputed."""
    votes = [("d1", "up", "a"), ("d1", "up", "b"), ("d2", "down", "a"), ("d2", "down", "b")]
    votes += [("d2", "up", "c"), ("d3", "up", "a"), ("d3", "down", "b")]
    events = [
        LabelEvent(
            id=doc,
            text=f"text, of {doc}",
            label=label,
            response_id=f"{doc}-{who}",
            origin="evaluation" if doc == "d1" else "uncertain",
        )
        for doc, label, who in votes
    ]
    return store_with(tmp_path, events).labelled("classification")


def spans(tmp_path: Path) -> list[ResolvedLabel]:
    text = 'Buy $AAPL, "EUR/USD" and ETHBTC'
    found = [mention(text, s, t) for s, t in (("$AAPL", "STOCK"), ("EUR/USD", "FOREX"))]
    found += [mention(text, "ETH", "CRYPTO"), mention(text, "BTC", "CRYPTO")]
    events = [
        LabelEvent(id="e1", text=text, task="entities", spans=found, response_id="r1"),
        LabelEvent(
            id="e2", text="calm day", task="entities", spans=[], response_id="r2", origin="rare"
        ),
    ]
    return store_with(tmp_path, events).labelled("entities")


def test_classes_export_with_agreement_and_origin_and_read_back(tmp_path: Path) -> None:
    items = classes(tmp_path)
    assert [i.id for i in items] == ["d1", "d2"]  # the disputed d3 is left out
    out = io.StringIO()
    assert export(items, Format.JSONL, out) == 2
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["id"], r["label"], r["agreement"], r["answers"], r["origin"]) for r in rows] == [
        ("d1", "up", 1.0, 2, "evaluation"),
        ("d2", "down", 0.6667, 3, "uncertain"),
    ]
    for form in (Format.JSONL, Format.CSV):
        path = tmp_path / f"export.{form.value}"
        with path.open("w", encoding="utf-8", newline="") as handle:
            export(items, form, handle)
        docs = list(read_documents(path, Columns()))
        assert [(d.id, d.text, d.label) for d in docs] == [
            (i.id, i.text, i.label) for i in items
        ], form


def test_label_sets_are_joined_in_csv(tmp_path: Path) -> None:
    event = LabelEvent(id="m", text="card lost", labels=["lost", "card"], response_id="r")
    items = store_with(tmp_path, [event]).labelled()
    path = tmp_path / "sets.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        export(items, Format.CSV, handle)
    assert "card|lost" in path.read_text()
    [doc] = read_documents(path, Columns())
    assert doc.labels == ["card", "lost"]  # type: ignore[union-attr]


@pytest.mark.parametrize("form", list(Format))
def test_spans_read_back_from_every_format(tmp_path: Path, form: Format) -> None:
    items = spans(tmp_path)
    path = tmp_path / f"export.{form.value}"
    with path.open("w", encoding="utf-8", newline="") as handle:
        assert export(items, form, handle) == 2
    back = {item.id: item for item in read_labelled(path)}
    assert set(back) == {"e1", "e2"}
    for item in items:
        got = back[item.id]
        assert [(s.text, s.label) for s in got.example.spans] == [
            (m.text, m.label) for m in item.spans or ()
        ]
        if form is Format.CONLL:
            assert got.fields["origin"] == (item.origin or "unknown")
            assert got.fields["agreement"] == "1.0"
        else:  # the text itself, not re-spaced tokens
            assert got.example.text == item.text
            assert got.fields.get("origin") == item.origin
            assert got.fields["agreement"] == "1.0"


def test_conll_refuses_class_labels(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="CoNLL holds entity tags"):
        export(classes(tmp_path), Format.CONLL, io.StringIO())
