"""Readers: every input line becomes a document or a rejection that says where and why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loop.errors import InputError
from loop.ids import content_id
from loop.messages import Document
from loop.readers import (
    Columns,
    Rejected,
    parse_label_map,
    read_csv,
    read_documents,
    read_folder,
    read_jsonl,
)


def split(results: list[Document | Rejected]) -> tuple[list[Document], list[Rejected]]:
    docs = [r for r in results if isinstance(r, Document)]
    rejected = [r for r in results if isinstance(r, Rejected)]
    assert len(docs) + len(rejected) == len(results)
    return docs, rejected


def non_blank_lines(path: Path) -> int:
    return sum(1 for line in path.read_bytes().splitlines() if line.strip())


# JSONL ------------------------------------------------------------------------------------


def test_jsonl_reads_documents_and_accounts_for_every_line(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    lines = [
        json.dumps({"id": "a1", "text": "first", "label": "up", "metadata": {"lang": "en"}}),
        "",
        json.dumps({"text": "no id here"}),
        "   ",
        "[1, 2, 3]",
        "{broken json",
        json.dumps({"id": "x", "body": "no text field"}),
        json.dumps({"id": "y", "text": "   "}),
        json.dumps({"id": 7, "text": "numeric id"}),
        json.dumps({"text": "bad metadata", "metadata": [1]}),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    docs, rejected = split(list(read_documents(path)))

    assert len(docs) + len(rejected) == non_blank_lines(path) == 8
    assert [d.id for d in docs] == ["a1", content_id("no id here"), "7"]
    first = docs[0]
    assert (first.text, first.label, first.metadata, first.source) == (
        "first",
        "up",
        {"lang": "en"},
        str(path),
    )
    assert docs[1].label is None and docs[1].metadata == {}

    by_line = {r.line: r.reason for r in rejected}
    assert sorted(by_line) == [5, 6, 7, 8, 10]
    assert "expected a JSON object, got list" in by_line[5]
    assert by_line[6]  # the JSON parser's message, whatever it is
    assert "no 'text' field" in by_line[7]
    assert "'text' is empty" in by_line[8]
    assert "'metadata' must be an object" in by_line[10]
    assert all(r.source == str(path) for r in rejected)


def test_jsonl_custom_columns(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text(
        json.dumps({"key": "k1", "body": "hello", "sentiment": 0})
        + "\n"
        + json.dumps({"key": "k2", "body": "bye", "sentiment": 5})
        + "\n",
        encoding="utf-8",
    )
    columns = Columns(text="body", id="key", label="sentiment", label_names={"0": "Bearish"})
    docs, rejected = split(list(read_jsonl(path, columns)))
    assert [(d.id, d.text, d.label) for d in docs] == [("k1", "hello", "Bearish")]
    assert [(r.line, r.reason) for r in rejected] == [(2, "label '5' is not in the label map")]


def test_jsonl_line_that_is_not_utf8_is_rejected_and_reading_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_bytes(b'{"text": "ok one"}\n{"text": "caf\xe9"}\n{"text": "ok two"}\n')
    docs, rejected = split(list(read_jsonl(path)))
    assert [d.text for d in docs] == ["ok one", "ok two"]
    assert [r.line for r in rejected] == [2]
    assert "utf-8" in rejected[0].reason.lower()


def test_jsonl_with_windows_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_bytes(b'{"id": "a", "text": "one"}\r\n\r\n{"id": "b", "text": "two"}\r\n')
    docs, rejected = split(list(read_jsonl(path)))
    assert [(d.id, d.text) for d in docs] == [("a", "one"), ("b", "two")]
    assert not rejected


# CSV --------------------------------------------------------------------------------------


def test_csv_reads_ids_labels_and_rejects_wrong_field_counts(tmp_path: Path) -> None:
    path = tmp_path / "docs.csv"
    path.write_text(
        "id,text,label\n"  # 1
        "r1,plain row,0\n"  # 2
        'r2,"a quoted, field\nthat spans\nthree lines",1\n'  # 3-5
        "r3,too few\n"  # 6
        "r4,too,many,fields\n"  # 7
        ",no id given,2\n"  # 8
        "r6,no label,\n",  # 9
        encoding="utf-8",
    )
    columns = Columns(label_names=parse_label_map("0=Bearish, 1=Bullish ,2=Neutral"))
    docs, rejected = split(list(read_documents(path, columns)))

    assert [(d.id, d.label) for d in docs] == [
        ("r1", "Bearish"),
        ("r2", "Bullish"),
        (content_id("no id given"), "Neutral"),
        ("r6", None),
    ]
    assert docs[1].text == "a quoted, field\nthat spans\nthree lines"
    assert [(r.line, r.reason) for r in rejected] == [
        (6, "expected 3 fields, got 2"),
        (7, "expected 3 fields, got 4"),
    ]
    assert len(docs) + len(rejected) == 6  # data records; the quoted one spans three lines


def test_csv_line_numbers_stay_right_after_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "docs.csv"
    path.write_text("id,text\r\nr1,one\r\n\r\nr2\r\nr3,three\r\n", encoding="utf-8")
    docs, rejected = split(list(read_csv(path)))
    assert [d.id for d in docs] == ["r1", "r3"]
    assert [(r.line, r.reason) for r in rejected] == [(4, "expected 2 fields, got 1")]
    assert len(docs) + len(rejected) == non_blank_lines(path) - 1  # minus the header


def test_csv_with_a_byte_order_mark_keeps_its_ids(tmp_path: Path) -> None:
    path = tmp_path / "docs.csv"  # as Excel saves "CSV UTF-8"
    path.write_bytes("id,text,label\nr1,caf\u00e9 opens,up\n".encode("utf-8-sig"))
    docs, rejected = split(list(read_documents(path)))
    assert [(d.id, d.text, d.label) for d in docs] == [("r1", "caf\u00e9 opens", "up")]
    assert not rejected


def test_jsonl_and_text_files_with_a_byte_order_mark(tmp_path: Path) -> None:
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_bytes(
        '{"id": "a", "text": "one"}\n{"id": "b", "text": "two"}\n'.encode("utf-8-sig")
    )
    assert [d.id for d in split(list(read_jsonl(jsonl)))[0]] == ["a", "b"]
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "a.txt").write_bytes("a note".encode("utf-8-sig"))
    [doc] = split(list(read_folder(folder)))[0]
    assert doc.text == "a note" and doc.id == content_id("a note")


def test_csv_line_that_is_not_utf8_is_rejected_and_reading_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "docs.csv"
    path.write_bytes(
        b"id,text\n"  # 1
        b"r1,ok one\n"  # 2
        b"r2,caf\xe9 in Latin-1\n"  # 3
        b'r3,"two\nlines"\n'  # 4-5
        b"r4,\xff\xfe\n"  # 6
        b"r5,ok two\n"  # 7
    )
    docs, rejected = split(list(read_documents(path)))
    assert [d.id for d in docs] == ["r1", "r3", "r5"]
    assert [r.line for r in rejected] == [3, 6]
    assert all(r.source == str(path) for r in rejected)
    assert "not UTF-8" in rejected[0].reason and "0xe9" in rejected[0].reason


def test_csv_rejects_unknown_label_and_blank_text(tmp_path: Path) -> None:
    path = tmp_path / "docs.csv"
    path.write_text("text,label\nfine,0\nodd,9\n  ,0\n", encoding="utf-8")
    columns = Columns(label_names={"0": "Bearish"})
    docs, rejected = split(list(read_csv(path, columns)))
    assert [(d.text, d.label) for d in docs] == [("fine", "Bearish")]
    assert [r.line for r in rejected] == [3, 4]
    assert "not in the label map" in rejected[0].reason
    assert "'text' is empty" in rejected[1].reason


def test_csv_without_text_column_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "docs.csv"
    path.write_text("id,body\n1,hello\n", encoding="utf-8")
    with pytest.raises(InputError, match="no 'text' column"):
        list(read_documents(path))
    # the same file is fine when told which column holds the text
    docs, _ = split(list(read_documents(path, Columns(text="body"))))
    assert [(d.id, d.text) for d in docs] == [("1", "hello")]


def test_empty_csv_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("", encoding="utf-8")
    with pytest.raises(InputError):
        list(read_csv(path))


# folders ----------------------------------------------------------------------------------


def test_folder_of_text_files(tmp_path: Path) -> None:
    folder = tmp_path / "corpus"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("first document\n", encoding="utf-8")
    (folder / "sub" / "b.md").write_text("second document", encoding="utf-8")
    (folder / "c.TXT").write_text("third document", encoding="utf-8")
    (folder / "latin1.txt").write_bytes("caf\u00e9".encode("latin-1"))
    (folder / "empty.txt").write_text("  \n", encoding="utf-8")
    (folder / "data.csv").write_text("text\nnot read as a document\n", encoding="utf-8")
    (folder / "image.png").write_bytes(b"\x89PNG\r\n")
    (folder / "notes").write_text("no suffix", encoding="utf-8")

    docs, rejected = split(list(read_documents(folder)))

    by_file = {d.metadata["file"]: d for d in docs}
    assert sorted(by_file) == ["a.txt", "b.md", "c.TXT"]
    assert by_file["a.txt"].id == content_id("first document")
    assert by_file["a.txt"].text == "first document\n"
    assert by_file["b.md"].source == str(folder / "sub" / "b.md")
    assert sorted(Path(r.source).name for r in rejected) == ["empty.txt", "latin1.txt"]
    latin1 = next(r for r in rejected if r.source.endswith("latin1.txt"))
    assert "utf-8" in latin1.reason.lower()


def test_same_text_in_two_files_gets_the_same_id(tmp_path: Path) -> None:
    (tmp_path / "one.txt").write_text("same words", encoding="utf-8")
    (tmp_path / "two.txt").write_text("same words\n", encoding="utf-8")
    docs, _ = split(list(read_folder(tmp_path)))
    assert len(docs) == 2
    assert docs[0].id == docs[1].id == content_id("same words")


# dispatch ---------------------------------------------------------------------------------


def test_unknown_suffix_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "docs.xlsx"
    path.write_bytes(b"whatever")
    with pytest.raises(InputError, match=r"unknown format '\.xlsx'"):
        read_documents(path)


def test_missing_path_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or folder"):
        read_documents(tmp_path / "nope.jsonl")


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson", ".json", ".JSONL"])
def test_json_suffixes_read_as_jsonl(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"docs{suffix}"
    path.write_text('{"id": "a", "text": "hello"}\n', encoding="utf-8")
    docs, rejected = split(list(read_documents(path)))
    assert [d.id for d in docs] == ["a"] and not rejected


# label maps -------------------------------------------------------------------------------


def test_parse_label_map() -> None:
    assert parse_label_map("0=Bearish,1=Bullish") == {"0": "Bearish", "1": "Bullish"}
    assert parse_label_map(" a = x , b=y ") == {"a": "x", "b": "y"}
    assert parse_label_map(None) is None
    assert parse_label_map("") is None


@pytest.mark.parametrize("spec", ["0", "0=", "=Bearish", "0=Bearish,", "0=Bearish,,1=Bullish"])
def test_parse_label_map_errors_name_the_bad_entry(spec: str) -> None:
    with pytest.raises(InputError, match=r"bad label map entry .*expected RAW=NAME"):
        parse_label_map(spec)
