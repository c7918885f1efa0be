"""``alloop bench throughput``'s pipeline side on the real broker and real scorer processes:
rounds spread evenly over the partitions, every document read back, a scorer that dies ends
the run."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from tqdm import tqdm

from bench.throughput import Pipeline, rounds_of
from loop.messages import Document
from tests.conftest import tweets
from tests.integration.conftest import read_topic
from tests.integration.test_scorer import keyword_registry

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def stream(count: int) -> list[Document]:
    texts = [d.text for d in tweets("valid", limit=count)]
    return [Document(id=f"bench-{i}", text=texts[i % len(texts)]) for i in range(count)]


def records_of(broker: str, topic: str, count: int) -> list[Any]:
    """Read back (the local broker's end offsets are wrong: DESIGN.md)."""
    return read_topic(broker, topic, lambda records: len(records) >= count, settle=1.0)


def test_rounds_go_through_two_scorers_in_equal_shares_and_all_come_back(
    broker: str, tmp_path: Path
) -> None:
    registry = keyword_registry(tmp_path / "registry", tweets("train", per_label=20))
    batch = 8
    warm, rounds = rounds_of(stream(400), 0.1, 2, unit=batch * 3 * 2)
    with (
        Pipeline(broker, registry.root, tmp_path, batch, scorers=2, threads=1) as pipeline,
        tqdm(disable=True) as bar,
    ):
        pipeline.feed(warm, 0.1, bar)
        done = [pipeline.feed(part, 0.1, bar) for part in rounds]
        sent = len(warm) + sum(len(part) for part in rounds)
        produced = Counter(r.partition for r in records_of(broker, pipeline.raw, sent))
        tagged = Counter(r.key for r in records_of(broker, pipeline.tagged, sent))
    assert sorted(produced.items()) == [(p, sent // 6) for p in range(6)]  # equal whole shares
    assert len(tagged) == sent and set(tagged.values()) == {1}  # each document tagged once
    for part, round_ in zip(rounds, done, strict=True):
        assert round_.documents == len(part)
        assert round_.counted < len(part)  # the round's warm-up left out
        assert round_.started < round_.warm_at <= round_.ended
        assert round_.at_end.broker is None  # no broker pid given: not measured
    assert done[-1].at_end.scorers > done[0].at_warm.scorers


def test_a_scorer_that_dies_ends_the_run_with_its_log(broker: str, tmp_path: Path) -> None:
    registry = keyword_registry(tmp_path / "registry", tweets("train", per_label=20))
    with (
        Pipeline(broker, registry.root, tmp_path, 8, scorers=2, threads=1) as pipeline,
        tqdm(disable=True) as bar,
    ):
        pipeline.feed(stream(48), 0.1, bar)
        pipeline.processes[0].kill()
        pipeline.processes[0].wait(timeout=30)
        with pytest.raises(
            RuntimeError, match=r"(?s)a scorer exited \(code -9\):\n.*scorer bench-0"
        ):
            pipeline.feed(stream(480)[48:], 0.1, bar)
