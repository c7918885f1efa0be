import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.throughput import CpuSoFar, RssSampler, current_assignment, rounds_of, shares_of
from loop.messages import Document

GROUP = "bench-1-scorer"


def test_a_scorers_assignment_is_its_last_one_and_none_after_a_revocation() -> None:
    log = "\n".join(
        [
            f"2026-12-07 INFO connectors.kafka: group {GROUP} assigned partitions: r/0, r/1, r/2",
            "2026-12-07 INFO connectors.kafka: group other assigned partitions: m/0",
            f"2026-12-07 INFO connectors.kafka: group {GROUP} revoked partitions: r/0, r/1, r/2",
        ]
    )
    assert current_assignment(log, GROUP) == set()
    log += f"\n2026-12-07 INFO connectors.kafka: group {GROUP} assigned partitions: r/1, r/2"
    assert current_assignment(log, GROUP) == {"r/1", "r/2"}
    assert current_assignment(log, "other") == {"m/0"}
    assert current_assignment(f"group {GROUP} assigned partitions: none", GROUP) == set()
    assert current_assignment("no group yet", GROUP) == set()


def test_each_raw_process_gets_every_nth_batch_whole_and_all_are_scored_once() -> None:
    texts = [str(i) for i in range(10)]
    assert shares_of(texts, 3, 2) == [["0", "1", "2", "6", "7", "8"], ["3", "4", "5", "9"]]
    assert shares_of(texts, 4, 1) == [texts]
    assert sorted((t for share in shares_of(texts, 2, 3) for t in share), key=int) == texts


def test_the_warm_up_comes_first_and_the_rest_in_rounds_of_whole_units() -> None:
    docs = [Document(id=f"d{i}", text=str(i)) for i in range(1000)]
    warm, rounds = rounds_of(docs, 0.1, 4)
    assert warm == docs[:100] and [len(part) for part in rounds] == [225] * 4
    assert [d for part in rounds for d in part] == docs[100:]
    warm, rounds = rounds_of(docs, 0.1, 4, unit=48)  # batches of 16 on 3 partitions
    assert len(warm) == 96 and [len(part) for part in rounds] == [192] * 4
    assert [d for part in rounds for d in part] == docs[96 : 96 + 768]  # 136 left over
    assert rounds_of(docs, 0.0, 1, unit=300) == (docs[:300], [docs[300:900]])
    with pytest.raises(ValueError, match="too few"):
        rounds_of(docs[:500], 0.1, 4, unit=128)


def test_the_cpu_so_far_is_the_scorers_the_brokers_and_this_processs_own() -> None:
    busy = "import time\nend = time.process_time() + 0.6\nwhile time.process_time() < end: pass"
    child = subprocess.Popen([sys.executable, "-c", busy + "\ntime.sleep(30)"])
    try:
        import psutil

        before = CpuSoFar.now([child.pid], child.pid)
        deadline = time.monotonic() + 60
        while sum(psutil.Process(child.pid).cpu_times()[:2]) < 0.6:  # the child's busy part
            assert time.monotonic() < deadline, "the child never spent its 0.6 s"
            time.sleep(0.05)
        end = time.process_time() + 0.2
        while time.process_time() < end:  # this process's own part
            pass
        after = CpuSoFar.now([child.pid], child.pid)
        assert before.broker is not None and after.broker is not None
        assert after.broker - before.broker >= 0.4
        assert after.scorers - before.scorers == pytest.approx(
            after.broker - before.broker, abs=0.05
        )
        assert 0.2 <= after.reader - before.reader < 0.4
        assert after.idle >= before.idle and after.steal >= before.steal
        two = CpuSoFar.now([child.pid, child.pid], None)
        assert two.broker is None and two.scorers >= 2 * after.scorers
    finally:
        child.kill()
        child.wait()


def test_the_sampler_sums_the_memory_of_every_process() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "x = bytearray(200 * 2**20); import time; time.sleep(30)"]
    )
    try:
        import psutil

        deadline = time.monotonic() + 60
        while psutil.Process(child.pid).memory_info().rss < 200 * 2**20:  # not started yet
            assert time.monotonic() < deadline, "the child never held its 200 MB"
            time.sleep(0.05)
        alone = RssSampler([os.getpid()], interval=0.05)
        both = RssSampler([os.getpid(), child.pid], interval=0.05)
        for sampler in (alone, both):
            sampler.start()
        time.sleep(0.3)
        for sampler in (alone, both):
            sampler.done.set()
            sampler.join()
        assert both.samples and alone.samples
        gap = both.samples[-1][1] - alone.samples[-1][1]
        assert gap >= 190 * 2**20
    finally:
        child.kill()
        child.wait()


@pytest.mark.slow
def test_raw_model_processes_share_the_batches_and_add_up(tmp_path: Path) -> None:
    """Two single-threaded raw model processes (the raw side of ``--scorers 2 --threads 1``)
    score every batch once between them: the documents of both over the slower one's time."""
    from bench.throughput import measure_raw_processes
    from loop.classification.base import ClassifierConfig
    from loop.registry import ModelRegistry
    from loop.testing.classifier import KeywordFactory

    registry = ModelRegistry(tmp_path / "registry")
    model = KeywordFactory().train(["up up", "down down"], ["up", "down"], ClassifierConfig())
    registry.publish(model.save, labels=model.labels, kind=KeywordFactory().name)
    texts = [f"up {i}" if i % 2 else f"down {i}" for i in range(130)]
    rate, cpu_ms = measure_raw_processes(registry, "v0001", texts, 16, processes=2, threads=1)
    assert rate > 0 and cpu_ms > 0


@pytest.mark.slow
def test_a_raw_model_process_that_fails_stops_the_measure_with_its_exit_code(
    tmp_path: Path,
) -> None:
    from bench.throughput import measure_raw_processes
    from loop.registry import ModelRegistry

    empty = ModelRegistry(tmp_path / "registry")
    with pytest.raises(RuntimeError, match="a raw model process failed"):
        measure_raw_processes(empty, "v0001", ["up"] * 40, 16, processes=2, threads=1)
