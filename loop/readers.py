"""Read documents from JSONL, CSV or a folder of text files.

Readers never drop a line silently: each line gives either a :class:`Document` or a
:class:`Rejected` that says where and why (a line that is not UTF-8 too). A UTF-8 byte order
mark at the start of a file (Excel's "CSV UTF-8") is not part of its first field.
"""

from __future__ import annotations

import codecs
import csv
import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from loop.errors import InputError
from loop.ids import content_id
from loop.messages import Document

TEXT_SUFFIXES = {".txt", ".md", ".text"}


@dataclass(frozen=True)
class Rejected:
    """A line (or file) that could not become a document."""

    source: str
    line: int
    reason: str


@dataclass(frozen=True)
class Columns:
    """Which fields hold the text, the id, the label and the label set (multi-label: a JSON
    list, or in CSV the labels joined by ``|``); and how labels are renamed."""

    text: str = "text"
    id: str = "id"
    label: str = "label"
    labels: str = "labels"
    label_names: Mapping[str, str] | None = None


def _label(value: Any, columns: Columns) -> str | None:
    if value is None or value == "":
        return None
    label = str(value)
    if columns.label_names is not None:
        if label not in columns.label_names:
            raise ValueError(f"label {label!r} is not in the label map")
        return columns.label_names[label]
    return label


def _labels(value: Any, columns: Columns) -> list[str] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = value.split("|")
    if not isinstance(value, list):
        raise ValueError(f"{columns.labels!r} must be a list of labels, got {value!r}")
    names = [_label(v, columns) for v in value]
    if any(n is None for n in names):
        raise ValueError(f"{columns.labels!r} holds an empty label: {value!r}")
    return sorted({str(n) for n in names})


def _document(
    record: Mapping[str, Any], source: str, columns: Columns, metadata: dict[str, Any]
) -> Document:
    text = record.get(columns.text)
    if not isinstance(text, str):
        raise ValueError(f"no {columns.text!r} field with a string value")
    if not text.strip():
        raise ValueError(f"{columns.text!r} is empty")
    given = record.get(columns.id)
    doc_id = str(given) if given not in (None, "") else content_id(text)
    return Document(
        id=doc_id,
        text=text,
        label=_label(record.get(columns.label), columns),
        labels=_labels(record.get(columns.labels), columns),
        source=source,
        metadata=metadata,
    )


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return str(exc)


def _starts_with_bracket(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4096).removeprefix(codecs.BOM_UTF8).lstrip().startswith(b"[")


def read_json_array(path: Path, columns: Columns = Columns()) -> Iterator[Document | Rejected]:
    """A ``.json`` file holding one list of objects; ``line`` is then the item's number."""
    try:
        items = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a JSON list: {exc}") from exc
    if not isinstance(items, list):
        raise InputError(f"{path}: expected a JSON list of objects, got {type(items).__name__}")
    for number, record in enumerate(items, start=1):
        try:
            yield _json_document(record, path, columns)
        except (ValueError, ValidationError) as exc:
            yield Rejected(str(path), number, _reason(exc))


def _json_document(record: Any, path: Path, columns: Columns) -> Document:
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    metadata = record.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ValueError("'metadata' must be an object")
    return _document(record, str(path), columns, metadata)


def read_jsonl(path: Path, columns: Columns = Columns()) -> Iterator[Document | Rejected]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                if not line.strip():
                    continue
                yield _json_document(json.loads(line), path, columns)
            except (ValueError, ValidationError) as exc:
                yield Rejected(str(path), number, _reason(exc))


def _not_utf8(values: list[str]) -> str | None:
    """Why a CSV record read with ``surrogateescape`` is not UTF-8, if it is not."""
    for value in values:
        for char in value:
            if "\udc80" <= char <= "\udcff":
                return f"not UTF-8: byte 0x{ord(char) - 0xDC00:02x} (save the file as UTF-8)"
    return None


def read_csv(path: Path, columns: Columns = Columns()) -> Iterator[Document | Rejected]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    # Bytes that are not UTF-8 become lone surrogates, so that one bad line is rejected and
    # the lines after it are read.
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or columns.text not in header:
            raise InputError(f"{path}: no {columns.text!r} column in the header")
        width = len(header)
        while True:
            number = reader.line_num + 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield Rejected(str(path), number, f"unreadable CSV: {exc}")
                continue
            if not values:  # a blank line; it still counts for the line numbers after it
                continue
            try:
                if bad := _not_utf8(values):
                    raise ValueError(bad)
                if len(values) != width:
                    raise ValueError(f"expected {width} fields, got {len(values)}")
                yield _document(dict(zip(header, values, strict=True)), str(path), columns, {})
            except (ValueError, ValidationError) as exc:
                yield Rejected(str(path), number, _reason(exc))


def read_folder(path: Path) -> Iterator[Document | Rejected]:
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        if file.suffix.lower() not in TEXT_SUFFIXES:
            continue
        try:
            text = file.read_text(encoding="utf-8-sig")
            yield _document({"text": text}, str(file), Columns(), {"file": file.name})
        except (UnicodeDecodeError, ValueError, ValidationError) as exc:
            yield Rejected(str(file), 0, _reason(exc))


def read_documents(path: Path, columns: Columns = Columns()) -> Iterator[Document | Rejected]:
    """Read documents from ``path``: a ``.jsonl`` file (or ``.json``: JSON Lines, or one JSON
    list of objects), a ``.csv`` file or a folder."""
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_dir():
        return read_folder(path)
    suffix = path.suffix.lower()
    if suffix == ".json" and _starts_with_bracket(path):
        return read_json_array(path, columns)
    if suffix in {".jsonl", ".ndjson", ".json"}:
        return read_jsonl(path, columns)
    if suffix in {".csv"}:
        return read_csv(path, columns)
    raise InputError(f"{path}: unknown format {suffix!r} (expected .jsonl, .csv or a folder)")


def parse_label_map(spec: str | None) -> dict[str, str] | None:
    """Parse ``0=Bearish,1=Bullish`` into a mapping; ``None`` stays ``None``."""
    if not spec:
        return None
    mapping: dict[str, str] = {}
    for item in spec.split(","):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InputError(f"bad label map entry {item!r}: expected RAW=NAME")
        mapping[key.strip()] = value.strip()
    return mapping
