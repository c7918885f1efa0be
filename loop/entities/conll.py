"""Read entity-labelled data: CoNLL ``token<TAB>tag`` (BIO) or JSONL with character spans.

CoNLL sentences become text by joining their tokens with one space; each entity becomes a
character span of that text, so every reader returns the same :class:`Example`. Malformed
input raises :class:`~loop.errors.InputError` naming the file and line.

JSONL lines look like ``{"text": "...", "spans": [{"start": 0, "end": 6, "label": "FOREX"}]}``;
``entities`` is accepted for ``spans`` and ``type`` for ``label``. When a span gives its
``text`` as well, it must match the text at its offsets.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from loop.entities.base import Example, Span, SpanError
from loop.errors import InputError


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


def read_conll(path: Path) -> list[Example]:
    """Sentences of a CoNLL file (blank lines between sentences; token first, tag last)."""
    examples: list[Example] = []
    tokens: list[str] = []
    tags: list[str] = []
    first_line = 1

    def flush() -> None:
        if tokens:
            try:
                text, spans = spans_from_bio(tokens, tags)
            except InputError as exc:
                raise InputError(f"{path}:{first_line}: {exc}") from exc
            examples.append(Example(text, tuple(spans)))
            tokens.clear()
            tags.clear()

    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.startswith("-DOCSTART-"):
                flush()
                first_line = number + 1
                continue
            columns = line.split("\t") if "\t" in line else line.split()
            if len(columns) < 2:
                raise InputError(f"{path}:{number}: expected 'token<TAB>tag', got {line!r}")
            tokens.append(columns[0])
            tags.append(columns[-1])
    flush()
    return examples


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


def iter_jsonl(path: Path) -> Iterator[Example]:
    """Examples of a JSONL file, one object per line; blank lines are skipped."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                text = record["text"]
                if not isinstance(text, str):
                    raise InputError("text is not a string")
                raw_spans = record.get("spans", record.get("entities", []))
                example = Example(text, tuple(_span_from_json(text, s) for s in raw_spans))
                example.check()
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
                raise InputError(f"{path}:{number}: not an entity record: {exc}") from exc
            except (InputError, SpanError) as exc:
                raise InputError(f"{path}:{number}: {exc}") from exc
            yield example


def read_examples(path: Path) -> list[Example]:
    """Examples from ``path``: JSONL when it ends in ``.jsonl``/``.json``, CoNLL otherwise."""
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    if path.suffix in {".jsonl", ".json"}:
        return list(iter_jsonl(path))
    return read_conll(path)


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
