"""A person's entity answer, checked against the text it is about.

An answer is a list of character spans (``{"label", "start", "end"}``, as Argilla's span
question records them). Each span is checked on its own: offsets that are not integers, fall
outside the text, select only whitespace or overlap an earlier span are rejected with a reason
and are not trained on; the other spans of the same answer are kept. Whitespace at a span's
edges is trimmed, since a selection that includes the neighbouring space means the same
entity.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from loop.messages import EntityMention


def _reject(index: int, raw: Any, why: str) -> str:
    return f"span {index} {raw!r}: {why}"


def check_answer(
    text: str, values: Any, types: Collection[str] = ()
) -> tuple[list[EntityMention], list[str]]:
    """The valid spans of an answer, sorted by offset, and a reason for each rejected one.

    ``types``, when given, are the entity types the question offers; a span of another type
    is rejected.
    """
    if values is None:
        return [], []
    if not isinstance(values, list):
        return [], [f"the answer is not a list of spans: {values!r}"]
    kept: list[EntityMention] = []
    rejected: list[str] = []
    for index, raw in enumerate(values):
        if not isinstance(raw, dict):
            rejected.append(_reject(index, raw, "not an object with label, start and end"))
            continue
        label, start, end = raw.get("label"), raw.get("start"), raw.get("end")
        if not isinstance(label, str) or not label:
            rejected.append(_reject(index, raw, "no label"))
            continue
        if types and label not in types:
            rejected.append(_reject(index, raw, f"type {label!r} is not one of {sorted(types)}"))
            continue
        if type(start) is not int or type(end) is not int:
            rejected.append(_reject(index, raw, "start and end must be integers"))
            continue
        if not 0 <= start < end <= len(text):
            rejected.append(
                _reject(index, raw, f"offsets outside a text of {len(text)} characters")
            )
            continue
        surface = text[start:end]
        if not surface.strip():
            rejected.append(_reject(index, raw, "it selects only whitespace"))
            continue
        start += len(surface) - len(surface.lstrip())
        end -= len(surface) - len(surface.rstrip())
        clash = next((k for k in kept if start < k.end and k.start < end), None)
        if clash is not None:
            rejected.append(_reject(index, raw, f"it overlaps {clash.text!r} ({clash.label})"))
            continue
        kept.append(EntityMention(label=label, start=start, end=end, text=text[start:end]))
    return sorted(kept, key=lambda m: (m.start, m.end)), rejected
