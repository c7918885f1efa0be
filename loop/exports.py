"""The label store's agreed labels as files: JSON Lines, CSV or CoNLL.

Each exported document carries its id, its text, what people agreed on (the label, the label
set of a multi-label answer, or the entity spans), the agreement (the share of annotators who
gave that answer), how many answers it had, when the newest was given, and its ``origin``: why
the document was chosen (``evaluation`` for the uniform sample that makes the frozen test set,
``uncertain``, ``rare``, ``unseen``, ``random``, ``cold-start``, or ``seed`` and ``test-file``
for labels that came from files). Every format reads back as a seed file: ``alloop train
--data`` (``--task entities`` for spans) takes the export as it is.

- **jsonl**: one object per document (``spans``: ``[{"start", "end", "label", "text"}]``).
- **csv**: the same columns; a label set is joined by ``|``, spans are a JSON list.
- **conll**: entity tasks only; ``token<TAB>tag`` in BIO after ``# key = value`` comments
  (id, origin, agreement, answers); tokens are the text's runs of non-space characters, cut
  where an entity starts or ends (:func:`~loop.entities.conll.bio_tokens`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any, TextIO

from loop.entities.base import Span
from loop.entities.conll import conll_sentence
from loop.errors import InputError
from loop.labels import ResolvedLabel


class Format(StrEnum):
    """The export formats."""

    JSONL = "jsonl"
    CSV = "csv"
    CONLL = "conll"


COLUMNS = ("id", "text", "agreement", "answers", "origin", "labelled_at")


def record(item: ResolvedLabel) -> dict[str, Any]:
    """One exported document: its id and text, its agreed answer, where it came from."""
    answer: dict[str, Any]
    if item.spans is not None:
        answer = {
            "spans": [
                {"start": m.start, "end": m.end, "label": m.label, "text": m.text}
                for m in item.spans
            ]
        }
    elif item.labels is not None:
        answer = {"labels": list(item.labels)}
    else:
        answer = {"label": item.label}
    return {
        "id": item.id,
        "text": item.text,
        **answer,
        "agreement": item.agreement,
        "answers": item.answers,
        "origin": item.origin,
        "labelled_at": item.labelled_at.isoformat() if item.labelled_at else None,
    }


def write_jsonl(items: Iterable[ResolvedLabel], out: TextIO) -> int:
    count = 0
    for item in items:
        out.write(json.dumps(record(item), ensure_ascii=False) + "\n")
        count += 1
    return count


def _cell(key: str, value: Any) -> str:
    if value is None:
        return ""
    if key == "spans":
        return json.dumps(value, ensure_ascii=False)
    if key == "labels":
        return "|".join(value)
    return str(value)


def write_csv(items: Sequence[ResolvedLabel], out: TextIO) -> int:
    rows = [record(item) for item in items]
    answer = next((k for k in ("spans", "labels") if rows and k in rows[0]), "label")
    columns = [*COLUMNS[:2], answer, *COLUMNS[2:]]
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _cell(key, row.get(key)) for key in columns})
    return len(rows)


def write_conll(items: Iterable[ResolvedLabel], out: TextIO) -> int:
    count = 0
    for item in items:
        if item.spans is None:
            raise InputError(
                f"document {item.id} has a class label, not entity spans: CoNLL holds "
                "entity tags (export classification labels as jsonl or csv)"
            )
        spans = [Span(m.start, m.end, m.label, m.text) for m in item.spans]
        fields = {
            "id": item.id,
            "origin": item.origin or "unknown",
            "agreement": str(item.agreement),
            "answers": str(item.answers),
        }
        out.write(conll_sentence(item.text, spans, fields))
        count += 1
    return count


def export(items: Sequence[ResolvedLabel], form: Format, out: TextIO) -> int:
    """Write ``items`` to ``out`` in ``form``; return how many documents were written."""
    if form is Format.JSONL:
        return write_jsonl(items, out)
    if form is Format.CSV:
        return write_csv(items, out)
    return write_conll(items, out)
