from __future__ import annotations

import json
from pathlib import Path

import pytest

from loop.entities.base import Example, SpanError
from loop.entities.conll import (
    bio_tokens,
    conll_sentence,
    read_examples,
    read_labelled,
    spans_from_bio,
    write_jsonl,
)
from loop.errors import InputError
from loop.ids import content_id
from tests.unit.loop.entities.conftest import spans_of


def test_bio_to_character_spans_with_unicode_and_edges() -> None:
    text, spans = spans_from_bio(
        ["São", "Paulo", "é", "linda", "😀", "Zoë"],
        ["B-location", "I-location", "O", "O", "O", "B-person"],
    )
    assert text == "São Paulo é linda 😀 Zoë"
    assert [(s.start, s.end, s.label, s.text) for s in spans] == [
        (0, 9, "location", "São Paulo"),
        (20, 23, "person", "Zoë"),
    ]
    assert all(text[s.start : s.end] == s.text for s in spans)


def test_i_tag_of_another_type_starts_a_new_entity() -> None:
    _, spans = spans_from_bio(["a", "b", "c"], ["B-x", "I-y", "I-y"])
    assert [(s.text, s.label) for s in spans] == [("a", "x"), ("b c", "y")]


def test_conll_file_sentences_and_bad_tags(tmp_path: Path) -> None:
    path = tmp_path / "data.conll"
    path.write_text("Empire\tB-location\nState\tI-location\nrocks\tO\n\nhi\tO\n", encoding="utf-8")
    examples = read_examples(path)
    assert [e.text for e in examples] == ["Empire State rocks", "hi"]
    assert examples[0].spans[0].text == "Empire State"
    assert examples[1].spans == ()
    path.write_text("x\tQ-thing\n", encoding="utf-8")
    with pytest.raises(InputError, match="Q-thing"):
        read_examples(path)


def test_jsonl_round_trip_keeps_exact_offsets(tmp_path: Path) -> None:
    conll = tmp_path / "data.conll"
    conll.write_text("Ålesund\tB-LOC\nog\tO\n🙂\tO\nJürgen\tB-PER\n", encoding="utf-8")
    examples = read_examples(conll)
    jsonl = tmp_path / "data.jsonl"
    write_jsonl(examples, jsonl)
    again = read_examples(jsonl)
    assert again == examples
    assert [(s.start, s.end) for s in again[0].spans] == [(0, 7), (13, 19)]


def test_jsonl_accepts_entities_and_type_keys(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    record = {"text": "USDJPY up", "entities": [{"start": 0, "end": 6, "type": "FOREX"}]}
    path.write_text(json.dumps(record) + "\n\n", encoding="utf-8")
    [example] = read_examples(path)
    assert example.spans[0].label == "FOREX"
    assert example.spans[0].text == "USDJPY"


@pytest.mark.parametrize(
    "span",
    [
        {"start": 0, "end": 7, "label": "FOREX"},
        {"start": 0, "end": 6, "label": "FOREX", "text": "EURUSD"},
        {"start": "a", "end": 6, "label": "FOREX"},
    ],
)
def test_jsonl_rejects_spans_that_do_not_match_the_text(tmp_path: Path, span: dict) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"text": "USDJPY", "spans": [span]}) + "\n", encoding="utf-8")
    with pytest.raises((InputError, SpanError), match=r"bad\.jsonl:1"):
        read_examples(path)


def test_labelled_files_name_their_documents(tmp_path: Path) -> None:
    conll = tmp_path / "data.conll"
    conll.write_text(
        "# id = doc-1\n# origin = uncertain\n#\tO\nfed\tB-org\n\nhi\tO\n", encoding="utf-8"
    )
    first, second = read_labelled(conll)
    assert (first.id, first.example.text, first.fields["origin"]) == ("doc-1", "# fed", "uncertain")
    assert [(s.text, s.label) for s in first.example.spans] == [("fed", "org")]
    assert second.id == content_id("hi") and second.fields == {}
    jsonl = tmp_path / "data.jsonl"
    jsonl.write_text(json.dumps({"id": 7, "text": "EURUSD", "spans": []}) + "\n", encoding="utf-8")
    assert [(i.id, i.example) for i in read_labelled(jsonl)] == [("7", Example("EURUSD"))]


def test_csv_rows_hold_their_spans_as_json(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    spans = json.dumps([{"start": 0, "end": 6, "label": "FOREX"}])
    path.write_text(
        f'id,text,spans\na,EURUSD up,"{spans.replace(chr(34), chr(34) * 2)}"\nb,quiet,\n',
        encoding="utf-8",
    )
    first, second = read_labelled(path)
    assert first.id == "a" and first.example.spans[0].text == "EURUSD"
    assert second.example == Example("quiet")
    path.write_text("id,words\na,b\n", encoding="utf-8")
    with pytest.raises(InputError, match="no 'text' column"):
        read_labelled(path)
    path.write_text('text,spans\nEURUSD,"[{""start"": 0, ""end"": 9}]"\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"data\.csv:2"):
        read_labelled(path)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Buy $AAPL, sell  EUR/USD now", (("$AAPL", "STOCK"), ("EUR/USD", "FOREX"))),
        ("New York New York", (("New York", "LOC"),)),
        ("ETHBTC", (("ETH", "CRYPTO"), ("BTC", "CRYPTO"))),
        ("nothing here", ()),
    ],
)
def test_bio_tokens_read_back_as_the_same_entities(
    tmp_path: Path, text: str, found: tuple[tuple[str, str], ...]
) -> None:
    spans = spans_of(text, *found)
    path = tmp_path / "out.conll"
    path.write_text(conll_sentence(text, spans, {"id": "x 1"}), encoding="utf-8")
    [item] = read_labelled(path)
    assert item.id == "x 1"
    assert item.example.text.split() == " ".join(t for t, _ in bio_tokens(text, spans)).split()
    assert [(s.text, s.label) for s in item.example.spans] == [(s.text, s.label) for s in spans]
