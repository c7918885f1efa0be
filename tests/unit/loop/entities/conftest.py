"""Small entity data with Unicode text and entities at both edges of the text."""

from __future__ import annotations

import pytest

from loop.entities.base import Example, Span, make_span


def spans_of(text: str, *found: tuple[str, str]) -> tuple[Span, ...]:
    """Spans for the first occurrence of each ``(surface, label)`` in ``text``."""
    spans = []
    for surface, label in found:
        start = text.index(surface)
        spans.append(make_span(text, start, start + len(surface), label))
    return tuple(spans)


BASES = ["Zürich", "Ålesund", "São Paulo", "Kraków", "Münster", "Genève"]
PEOPLE = ["José", "Zoë", "Björn", "Łukasz", "Renée", "Jürgen"]


def edge_examples() -> list[Example]:
    """Place names open each text and person names close it, around emoji and accents."""
    examples = []
    for place, person in zip(BASES, PEOPLE, strict=True):
        for variant in range(4):
            filler = ["ist schön 😀 sagt", "is lovely — says", "était calme, dit", "🙂 ok, per"][
                variant
            ]
            text = f"{place} {filler} {person}"
            examples.append(Example(text, spans_of(text, (place, "LOC"), (person, "PER"))))
    return examples


@pytest.fixture(scope="session")
def edges() -> list[Example]:
    return edge_examples()
