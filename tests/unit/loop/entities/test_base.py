from __future__ import annotations

import pytest

from loop.entities.base import Example, ExtractorConfig, Span, SpanError, make_span


def test_make_span_takes_text_from_the_document_on_unicode() -> None:
    text = "😀 Zürich"
    span = make_span(text, 2, 8, "LOC")
    assert span.text == "Zürich"
    assert text[span.start : span.end] == span.text


@pytest.mark.parametrize(
    ("start", "end", "surface"),
    [(-1, 3, "abc"), (0, 0, ""), (2, 99, "c"), (0, 3, "abd")],
)
def test_span_check_rejects_spans_that_do_not_fit(start: int, end: int, surface: str) -> None:
    with pytest.raises(SpanError):
        Span(start, end, "X", surface).check("abc")


def test_example_rejects_overlapping_spans() -> None:
    text = "New York City"
    example = Example(text, (make_span(text, 0, 8, "LOC"), make_span(text, 4, 13, "LOC")))
    with pytest.raises(SpanError, match="overlap"):
        example.check()


def test_config_round_trips_through_a_dict() -> None:
    config = ExtractorConfig(types=("A", "B"), epochs=3, extra={"beam_width": 4})
    data = config.to_dict()
    assert data["types"] == ["A", "B"]
    assert ExtractorConfig.from_dict({**data, "unknown": 1}) == config


def test_importing_the_contract_stays_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, loop.entities.base, loop.entities.conll, loop.entities.patterns, "
        "loop.entities.factories, loop.testing.extractor, loop.entities.metrics;"
        "print(sorted({'torch','transformers','spacy'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
