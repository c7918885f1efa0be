"""Entity answers are checked span by span against their text."""

from __future__ import annotations

from loop.entities.answers import check_answer

TEXT = "AUDJPY 🚀 jumps; Zürich desk buys BTC"


def at(surface: str) -> tuple[int, int]:
    start = TEXT.index(surface)
    return start, start + len(surface)


def test_valid_spans_keep_their_offsets_on_unicode_text_at_both_edges() -> None:
    values = [
        {"label": "CRYPTO", "start": at("BTC")[0], "end": len(TEXT)},
        {"label": "FOREX", "start": 0, "end": 6},
    ]
    kept, rejected = check_answer(TEXT, values)
    assert rejected == []
    assert [(m.label, m.text, m.start, m.end) for m in kept] == [
        ("FOREX", "AUDJPY", 0, 6),
        ("CRYPTO", "BTC", *at("BTC")),
    ]


def test_a_malformed_span_is_rejected_with_its_reason_and_the_rest_is_kept() -> None:
    start = at("BTC")[0]
    values = [
        {"label": "FOREX", "start": 0, "end": 6},
        {"label": "CRYPTO", "start": start, "end": len(TEXT) + 4},
        {"label": "STOCK", "start": "3", "end": 9},
        {"label": "", "start": 1, "end": 2},
        "USDJPY",
        {"label": "STOCK", "start": 2, "end": 4},
        {"label": "STOCK", "start": 6, "end": 7},
    ]
    kept, rejected = check_answer(TEXT, values)
    assert [m.text for m in kept] == ["AUDJPY"]
    assert len(rejected) == 6
    assert "outside a text of" in rejected[0]
    assert "integers" in rejected[1]
    assert "no label" in rejected[2]
    assert "not an object" in rejected[3]
    assert "overlaps 'AUDJPY'" in rejected[4]
    assert "only whitespace" in rejected[5]


def test_edges_are_trimmed_and_unknown_types_are_refused() -> None:
    start, end = at("Zürich")
    kept, rejected = check_answer(
        TEXT,
        [{"label": "CITY", "start": start - 1, "end": end + 1}],
        types=("FOREX", "CRYPTO"),
    )
    assert kept == [] and "type 'CITY' is not one of" in rejected[0]
    kept, rejected = check_answer(TEXT, [{"label": "CITY", "start": start - 1, "end": end + 1}])
    assert [(m.text, m.start, m.end) for m in kept] == [("Zürich", start, end)]


def test_no_answer_and_a_non_list_answer() -> None:
    assert check_answer(TEXT, None) == ([], [])
    kept, rejected = check_answer(TEXT, {"label": "FOREX"})
    assert kept == [] and rejected[0].startswith("the answer is not a list")
