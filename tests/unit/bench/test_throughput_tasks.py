import pytest

from bench.throughput_tasks import growth, macro_f1, run, span_f1, summarise
from loop.entities.base import Span
from loop.errors import ConfigError
from loop.settings import Settings


def test_macro_f1_counts_a_missing_label_as_wrong() -> None:
    gold = ["a", "a", "b", "b"]
    assert macro_f1(gold, ["a", "a", "b", "b"]) == pytest.approx(1.0)
    # a: P 1, R 0.5, F1 2/3; b: F1 1 (a document left untagged is not predicted "b")
    assert macro_f1(gold, [None, "a", "b", "b"]) == pytest.approx((2 / 3 + 1) / 2)
    assert macro_f1(gold, ["b", "a", "b", "b"]) == pytest.approx((2 / 3 + 0.8) / 2)


def test_span_f1_is_strict_on_offsets_and_type() -> None:
    def span(start: int, end: int, label: str) -> Span:
        return Span(start=start, end=end, label=label, text="x" * (end - start))

    gold = [[span(0, 5, "ORG")], [span(3, 8, "PER")]]
    assert span_f1(gold, [[span(0, 5, "ORG")], [span(3, 8, "PER")]]) == 1.0
    assert span_f1(gold, [[span(0, 4, "ORG")], [span(3, 8, "LOC")]]) == 0.0
    assert span_f1(gold, [[span(0, 5, "ORG")], []]) == pytest.approx(0.6667)


def test_memory_growth_runs_from_the_warm_up_to_the_largest_sample_after_it() -> None:
    mb = 2**20
    warm, peak, grown = growth([50 * mb, 100 * mb, 90 * mb, 108 * mb, 104 * mb], 1)
    assert (warm, peak) == (100.0, 108.0)
    assert grown == pytest.approx(0.08)
    assert growth([], 0) == (0.0, 0.0, 0.0)


def test_speedup_is_fast_over_before_per_cpu_second_and_deltas_are_fast_minus_before() -> None:
    figures = summarise(
        {"before": 30.0, "float32": 20.0, "fast": 10.0},
        {"before": 60.0, "float32": 40.0, "fast": 25.0},
        1000,
        {"before": (0.70, 0.30), "float32": (0.70, 0.30), "fast": (0.69, 0.32)},
    )
    assert figures["speedup"] == 2.4  # documents per second: 1000 / 25 against 1000 / 60
    assert figures["speedup_cpu"] == 3.0
    assert figures["speedup_over_float32"] == 2.0
    assert figures["float32_docs_per_cpu_s"] == 50.0
    assert figures["fast_docs_per_s"] == 40.0
    assert figures["macro_f1_delta"] == pytest.approx(-0.01)
    assert figures["entity_f1_delta"] == pytest.approx(0.02)
    without = summarise(
        {"before": 1.0, "fast": 1.0},
        {"before": 1.0, "fast": 1.0},
        10,
        {"before": (0.5, None), "fast": (0.5, None)},
    )
    assert without["entity_f1_delta"] is None
    assert "speedup_over_float32" not in without


@pytest.mark.parametrize("tasks", [["entities"], ["classification", "topics"]])
def test_unknown_task_lists_are_refused_before_any_training(tasks: list[str]) -> None:
    with pytest.raises(ConfigError, match="--tasks"):
        run(Settings(), object, 10, tasks=tasks)
