"""Read and write entity-labelled data: CoNLL ``token<TAB>tag`` (BIO), JSONL with character
spans, or CSV with a ``spans`` column.

CoNLL sentences become text by joining their tokens with one space; each entity becomes a
character span of that text, so every reader returns the same :class:`Example`. Malformed
input raises :class:`~loop.errors.InputError` naming the file and line. A line ``# key = value``
before a sentence is a comment (CoNLL-U's convention); ``# id = ...`` names the sentence.

JSONL lines look like ``{"text": "...", "spans": [{"start": 0, "end": 6, "label": "FOREX"}]}``;
``entities`` is accepted for ``spans`` and ``type`` for ``label``. When a span gives its
``text`` as well, it must match the text at its offsets. CSV rows hold ``text`` and
``spans`` (that same list, as JSON). An ``id`` field names the document in both.

:func:`read_labelled` gives each example its document id: the one the file gives, else a hash
of the text (:func:`~loop.ids.content_id`), so that reading a file twice names the same
documents.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loop.entities.base import Example, Span, SpanError
from loop.errors import InputError
from loop.ids import content_id

COMMENT = re.compile(r"^# (?P<key>[\w-]+) = (?P<value>.*)$")
"""A CoNLL comment line (``# id = doc-7``), as CoNLL-U writes them; never a token line."""


@dataclass(frozen=True)
class Labelled:
    """An example with the id of its document and what the file says about it."""

    id: str
    example: Example
    fields: dict[str, str]
    """Other fields of its record or comments (origin, agreement, ...), as text."""


def spans_from_bio(tokens: Sequence[str], tags: Sequence[str]) -> tuple[str, list[Span]]:
    """Join ``tokens`` with spaces and turn their BIO ``tags`` into character spans.

    An ``I-`` tag that does not continue an entity of the same type starts a new one (the
    lenient reading CoNLL evaluation scripts use).
    """
    if len(tokens) != len(tags):
        raise InputError(f"{len(tokens)} tokens but {len(tags)} tags")
    text_parts: list[str] = []
    spans: list[Span] = []
    offset = 0
    current: tuple[int, int, str] | None = None  # start, end, label of the open entity

    def close() -> None:
        nonlocal current
        if current is not None:
            start, end, label = current
            spans.append(Span(start, end, label, "".join(text_parts)[start:end]))
            current = None

    for index, (token, tag) in enumerate(zip(tokens, tags, strict=True)):
        if index:
            text_parts.append(" ")
            offset += 1
        start, end = offset, offset + len(token)
        text_parts.append(token)
        offset = end
        prefix, _, label = tag.partition("-")
        if tag == "O":
            close()
        elif prefix == "B" and label:
            close()
            current = (start, end, label)
        elif prefix == "I" and label:
            if current is not None and current[2] == label:
                current = (current[0], end, label)
            else:
                close()
                current = (start, end, label)
        else:
            raise InputError(f"tag {tag!r} is not O, B-<type> or I-<type>")
    close()
    return "".join(text_parts), spans


def _conll_sentences(path: Path) -> Iterator[Labelled]:
    """Sentences of a CoNLL file with their comments; ids are filled in by the caller."""
    tokens: list[str] = []
    tags: list[str] = []
    fields: dict[str, str] = {}
    first_line = 1

    def sentence() -> Labelled:
        try:
            text, spans = spans_from_bio(tokens, tags)
        except InputError as exc:
            raise InputError(f"{path}:{first_line}: {exc}") from exc
        found = Labelled(fields.get("id", ""), Example(text, tuple(spans)), dict(fields))
        tokens.clear()
        tags.clear()
        fields.clear()
        return found

    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.startswith("-DOCSTART-"):
                if tokens:
                    yield sentence()
                fields.clear()
                first_line = number + 1
                continue
            if not tokens and "\t" not in line and (comment := COMMENT.match(line)):
                fields[comment["key"]] = comment["value"]
                first_line = number + 1
                continue
            columns = line.split("\t") if "\t" in line else line.split()
            if len(columns) < 2:
                raise InputError(f"{path}:{number}: expected 'token<TAB>tag', got {line!r}")
            tokens.append(columns[0])
            tags.append(columns[-1])
    if tokens:
        yield sentence()


def read_conll(path: Path) -> list[Example]:
    """Sentences of a CoNLL file (blank lines between sentences; token first, tag last)."""
    return [item.example for item in _conll_sentences(path)]


def _span_from_json(text: str, raw: Any) -> Span:
    if not isinstance(raw, dict):
        raise InputError(f"a span must be an object, got {raw!r}")
    try:
        start, end = int(raw["start"]), int(raw["end"])
        label = str(raw.get("label", raw.get("type", "")))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"a span needs integer start and end: {raw!r}") from exc
    span = Span(start, end, label, text[start:end] if 0 <= start <= end else "")
    span.check(text)
    if "text" in raw and raw["text"] != span.text:
        raise SpanError(f"span [{start}, {end}) reads {span.text!r}, not {raw['text']!r}")
    return span


def _record(record: Any, spans_of: Any = None) -> Labelled:
    """A JSON object (or a CSV row, whose spans ``spans_of`` parses) as a labelled example."""
    if not isinstance(record, dict):
        raise InputError(f"expected an object, got {type(record).__name__}")
    text = record["text"]
    if not isinstance(text, str):
        raise InputError("text is not a string")
    raw_spans = record.get("spans", record.get("entities")) or []
    if spans_of is not None:
        raw_spans = spans_of(raw_spans)
    if not isinstance(raw_spans, list):
        raise InputError(f"spans must be a list, got {raw_spans!r}")
    example = Example(text, tuple(_span_from_json(text, s) for s in raw_spans))
    example.check()
    given = record.get("id")
    fields = {
        str(k): str(v)
        for k, v in record.items()
        if k not in {"id", "text", "spans", "entities"} and v not in (None, "")
    }
    return Labelled("" if given in (None, "") else str(given), example, fields)


def _labelled_jsonl(path: Path) -> Iterator[Labelled]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield _record(json.loads(line))
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
                raise InputError(f"{path}:{number}: not an entity record: {exc}") from exc
            except (InputError, SpanError) as exc:
                raise InputError(f"{path}:{number}: {exc}") from exc


def _json_spans(raw: Any) -> Any:
    return json.loads(raw) if isinstance(raw, str) and raw.strip() else raw


def _labelled_csv(path: Path) -> Iterator[Labelled]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        if "text" not in (reader.fieldnames or []):
            raise InputError(f"{path}: no 'text' column (columns: text, spans, optional id)")
        for row in reader:
            try:
                yield _record(row, _json_spans)
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
                raise InputError(f"{path}:{reader.line_num}: not an entity row: {exc}") from exc
            except (InputError, SpanError) as exc:
                raise InputError(f"{path}:{reader.line_num}: {exc}") from exc


def iter_jsonl(path: Path) -> Iterator[Example]:
    """Examples of a JSONL file, one object per line; blank lines are skipped."""
    return (item.example for item in _labelled_jsonl(path))


def read_labelled(path: Path) -> list[Labelled]:
    """The labelled examples of ``path`` (JSONL for ``.jsonl``/``.json``, CSV for ``.csv``,
    CoNLL otherwise), each with its document id: the file's, else a hash of its text."""
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    try:
        if path.suffix in {".jsonl", ".json"}:
            found = list(_labelled_jsonl(path))
        elif path.suffix == ".csv":
            found = list(_labelled_csv(path))
        else:
            found = list(_conll_sentences(path))
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text: {exc}") from exc
    return [
        item if item.id else Labelled(content_id(item.example.text), item.example, item.fields)
        for item in found
    ]


def read_examples(path: Path) -> list[Example]:
    """Examples from ``path``: JSONL when it ends in ``.jsonl``/``.json``, CSV for ``.csv``,
    CoNLL otherwise."""
    return [item.example for item in read_labelled(path)]


def write_jsonl(examples: Sequence[Example], path: Path) -> None:
    """Write examples as JSONL with character spans (what :func:`iter_jsonl` reads)."""
    with path.open("w", encoding="utf-8") as handle:
        for example in examples:
            spans = [
                {"start": s.start, "end": s.end, "label": s.label, "text": s.text}
                for s in example.spans
            ]
            handle.write(json.dumps({"text": example.text, "spans": spans}, ensure_ascii=False))
            handle.write("\n")


def bio_tokens(text: str, spans: Sequence[Span]) -> list[tuple[str, str]]:
    """``text`` as CoNLL tokens with BIO tags: its runs of non-space characters, cut where a
    span starts or ends, so that each token lies wholly inside an entity or outside all.
    Joined with single spaces (as :func:`spans_from_bio` reads them back) they give the
    same entities, on a text whose spacing may differ."""
    cuts = sorted({offset for span in spans for offset in (span.start, span.end)})
    tokens: list[tuple[int, int]] = []
    for match in re.finditer(r"\S+", text):
        start = match.start()
        for cut in cuts:
            if match.start() < cut < match.end():
                tokens.append((start, cut))
                start = cut
        tokens.append((start, match.end()))
    tagged: list[tuple[str, str]] = []
    for start, end in tokens:
        inside = next((s for s in spans if s.start <= start and end <= s.end), None)
        prefix = "" if inside is None else "B-" if start == inside.start else "I-"
        tagged.append((text[start:end], f"{prefix}{inside.label}" if inside else "O"))
    return tagged


def conll_sentence(text: str, spans: Sequence[Span], fields: dict[str, str]) -> str:
    """One sentence of a CoNLL file: ``# key = value`` comments, then ``token<TAB>tag``
    lines, then a blank line."""
    lines = [f"# {key} = {' '.join(str(value).split())}" for key, value in fields.items()]
    lines += [f"{token}\t{tag}" for token, tag in bio_tokens(text, spans)]
    return "\n".join(lines) + "\n\n"
