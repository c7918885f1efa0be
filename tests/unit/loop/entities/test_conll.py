from __future__ import annotations

import json
from pathlib import Path

import pytest

from loop.entities.base import SpanError
from loop.entities.conll import read_examples, spans_from_bio, write_jsonl
from loop.errors import InputError


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
