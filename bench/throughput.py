"""Pipeline throughput against the raw model, and scorer memory over a long stream.

In one run, on the same documents and with the same batch size:

* raw: ``predict_proba`` in this process, batch after batch, nothing else but giving free
  memory back after each batch as the scorer does; once before the pipeline and once after
  it, and the ratio is taken against the mean of the two, so that a machine that gets faster
  or slower during the run (other work on a shared host) moves both sides alike;
* pipeline: documents produced to a real broker, scored by a real ``alloop worker scorer``
  process, read back from the tagged topic. Two rates: over the whole run (from the first
  document produced to the last tagged document received) and steady (the documents tagged
  after the warm-up, the first ``warmup`` fraction, over the time after it). The ratio is
  the steady rate's, as the raw side's rate leaves out its own warm-up batch: the whole
  run's rate also counts the start (the reader joining its group, this process producing
  every document in its first second or two, on the same CPUs).

With ``scorers`` above 1, the pipeline runs that many scorer processes in one consumer group
(the raw topic gets three partitions per scorer, so that each has the same share) and the raw
side runs the model in as many processes at once, each on its own share of the batches; with
``threads``, every one of them runs its model on that many torch threads
(``ALLOOP_SCORER__THREADS``). Both sides always have the same shape, so the ratio compares
like with like, and the rates say which shape tags more on this machine.

The scorers' resident memory (their sum) is sampled throughout; growth is measured from the
end of the warm-up (the first ``warmup`` fraction of documents) to the largest sample after
it. The CPU time per document is reported beside the rates (the raw processes' time; the
scorer processes' from the end of the warm-up to the last document): on a shared machine it
moves less than wall time, and it counts what the pipeline's threads do beside the model.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from connectors.kafka import ensure_topics, make_consumer, make_producer
from connectors.outputs import encode_key
from loop.classification.factories import load_version
from loop.datasets import DEFAULT_DATASET, read_tweets, take_per_label
from loop.messages import Document, TaggedDocument, decode, encode
from loop.registry import ModelRegistry
from loop.settings import KafkaSettings, Settings
from stack import local


@dataclass
class ThroughputResult:
    documents: int
    batch_size: int
    scorers: int
    """Scorer processes in the pipeline, and raw model processes beside it."""
    threads: int
    """torch threads per process (0: torch's default, one per core)."""
    raw_docs_per_s: float
    """The mean of the raw model's rate before and after the pipeline."""
    raw_before_docs_per_s: float
    raw_after_docs_per_s: float
    pipeline_docs_per_s: float
    """Over the whole run: from the first document produced to the last tagged."""
    pipeline_steady_docs_per_s: float
    """After the warm-up: the documents tagged after it over the time after it."""
    ratio: float
    """The steady pipeline rate over ``raw_docs_per_s``."""
    ratio_whole: float
    """The whole run's pipeline rate over ``raw_docs_per_s`` (what ``ratio`` was until issue
    16's fifth session)."""
    scorer_rss_warm_mb: float
    scorer_rss_max_after_warmup_mb: float
    scorer_rss_growth: float
    scorer_rss_quarters_mb: list[float]
    """The largest resident memory in each quarter of the time after the warm-up: flat
    memory levels off, a leak climbs quarter after quarter."""
    raw_cpu_ms_per_doc: float
    """The raw model's CPU time per document (the mean of both raw runs)."""
    scorer_cpu_ms_per_doc: float
    """The scorer process's CPU time per document after the warm-up."""
    broker_cpu_ms_per_doc: float | None
    """The local broker's CPU time per document after the warm-up (None with ``--servers``)."""
    reader_cpu_ms_per_doc: float
    """This process's CPU time per document after the warm-up: reading the tagged topic back
    and sampling the scorers, on the same cores as the pipeline."""
    idle_share: float
    """The share of the machine's CPU time left idle after the warm-up."""
    model_version: str
    cpus: int


def _documents(count: int, dataset: Path) -> tuple[list[Document], list[Document]]:
    """A training seed and ``count`` stream documents (tweets, cycled, with unique ids)."""
    tweets = read_tweets(dataset)
    seed = take_per_label(tweets, 8)
    stream = [Document(id=f"bench-{i}", text=tweets[i % len(tweets)].text) for i in range(count)]
    return seed, stream


class RssSampler(threading.Thread):
    """Samples the resident memory and CPU time of processes (their sums) every ``interval``
    seconds."""

    def __init__(self, pids: list[int], interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        import psutil

        self.processes = [psutil.Process(pid) for pid in pids]
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self.cpu: list[tuple[float, float]] = []  # (when, user + system seconds)
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                now = time.monotonic()
                rss = sum(p.memory_info().rss for p in self.processes)
                cpu = 0.0
                for process in self.processes:
                    times = process.cpu_times()
                    cpu += times.user + times.system
                self.samples.append((now, rss))
                self.cpu.append((now, cpu))
            except Exception:
                return
            self.done.wait(self.interval)


def _warm_model(
    registry: ModelRegistry, version: str, texts: list[str], batch: int, threads: int
) -> Any:
    """The version loaded on ``threads`` torch threads in the precision the scorer serves in
    (``ALLOOP_PRECISION``, which the scorer processes read from the same environment), after
    one warm-up batch."""
    from loop.embeddings.backbone import use_threads

    use_threads(threads)
    classifier = load_version(registry, version, precision=Settings().precision)
    classifier.predict_proba(texts[:batch], batch_size=batch)
    return classifier


def _time_batches(
    classifier: Any, texts: list[str], batch: int, desc: str | None = None
) -> tuple[float, float]:
    """Seconds and this process's CPU seconds to score ``texts`` batch after batch, giving
    free memory back after each batch as the scorer does; a progress bar with ``desc``."""
    from loop.memory import release_free_memory

    starts = range(0, len(texts), batch)
    started, cpu = time.perf_counter(), time.process_time()
    for start in (
        starts if desc is None else tqdm(starts, desc=desc, unit=" batches", file=sys.stderr)
    ):
        classifier.predict_proba(texts[start : start + batch], batch_size=batch)
        release_free_memory()
    return time.perf_counter() - started, time.process_time() - cpu


def measure_raw(
    registry: ModelRegistry,
    version: str,
    texts: list[str],
    batch: int,
    when: str = "",
    threads: int = 0,
) -> tuple[float, float]:
    """Documents per second of the model alone, and this process's CPU milliseconds per
    document meanwhile."""
    classifier = _warm_model(registry, version, texts, batch, threads)
    elapsed, cpu = _time_batches(classifier, texts, batch, f"raw model{when}")
    return len(texts) / elapsed, cpu * 1000 / len(texts)


def _raw_share(
    root: Path,
    version: str,
    texts: list[str],
    batch: int,
    threads: int,
    ready: Any,
    results: Any,
) -> None:
    """One raw model process: load and warm up, wait for the others, then time its share."""
    classifier = _warm_model(ModelRegistry(root), version, texts, batch, threads)
    ready.wait(timeout=600)  # a process that never gets here breaks the barrier for all
    elapsed, cpu = _time_batches(classifier, texts, batch)
    results.put((len(texts), elapsed, cpu))


def shares_of(texts: list[str], batch: int, processes: int) -> list[list[str]]:
    """Every ``processes``-th batch of ``texts`` for each process: each batch once, whole."""
    batches = [texts[start : start + batch] for start in range(0, len(texts), batch)]
    return [[text for chunk in batches[k::processes] for text in chunk] for k in range(processes)]


def measure_raw_processes(
    registry: ModelRegistry,
    version: str,
    texts: list[str],
    batch: int,
    processes: int,
    threads: int,
    when: str = "",
) -> tuple[float, float]:
    """:func:`measure_raw` in ``processes`` processes at once, each on every
    ``processes``-th batch: the documents of all over the time of the slowest (they start
    together once all are loaded), and the CPU milliseconds per document of all."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(processes)
    results = context.Queue()
    workers = [
        context.Process(
            target=_raw_share,
            args=(registry.root, version, share, batch, threads, ready, results),
            daemon=True,
        )
        for share in shares_of(texts, batch, processes)
    ]
    print(f"raw model{when}: {processes} processes ...", file=sys.stderr, flush=True)
    for worker in workers:
        worker.start()
    timed: list[tuple[int, float, float]] = []
    while len(timed) < len(workers):
        try:
            timed.append(results.get(timeout=1))
        except queue.Empty:
            failed = [w.exitcode for w in workers if w.exitcode not in (None, 0)]
            if failed:
                raise RuntimeError(f"a raw model process failed (exit code {failed[0]})") from None
    for worker in workers:
        worker.join(timeout=60)
    documents = sum(count for count, _, _ in timed)
    if documents != len(texts):
        raise RuntimeError(f"the raw processes scored {documents} of {len(texts)} documents")
    slowest = max(elapsed for _, elapsed, _ in timed)
    cpu_ms = sum(cpu for _, _, cpu in timed) * 1000 / documents
    return documents / slowest, cpu_ms


def current_assignment(log: str, group: str) -> set[str]:
    """The partitions (``topic/partition``) a worker's ``log`` says it holds in ``group`` now:
    its last assignment, or none after a revocation."""
    held: set[str] = set()
    for line in log.splitlines():
        if f"group {group} revoked partitions: " in line:
            held = set()
        elif (marker := f"group {group} assigned partitions: ") in line:
            names = (name.strip() for name in line.split(marker, 1)[1].split(","))
            held = {name for name in names if name not in ("", "none")}
    return held


def wait_for_group(
    processes: list[Any], logs: list[Path], group: str, partitions: int, timeout_s: float
) -> None:
    """Wait until the scorers' logs show every partition held by exactly one of them and
    each holding its share: the group has settled, no rebalance is left to pause it."""
    deadline = time.monotonic() + timeout_s
    share = partitions // len(processes)
    while time.monotonic() < deadline:
        for process, log in zip(processes, logs, strict=True):
            local.wait_for_log(process, log, "assigned partitions", deadline - time.monotonic())
        held = [current_assignment(log.read_text(errors="replace"), group) for log in logs]
        every = set().union(*held)
        if len(every) == partitions and all(len(h) == share for h in held):
            return
        time.sleep(0.2)
    raise RuntimeError(f"the {len(processes)} scorers did not settle in group {group}")


@dataclass
class PipelineRun:
    docs_per_s: float
    """From the first document produced to the last tagged."""
    steady_docs_per_s: float
    """After the warm-up."""
    rss_warm_mb: float
    rss_max_after_mb: float
    rss_quarters_mb: list[float]
    cpu_ms_per_doc: float
    """The scorer's, after the warm-up."""
    broker_cpu_ms_per_doc: float | None = None
    reader_cpu_ms_per_doc: float = float("nan")
    idle_share: float = float("nan")


@dataclass(frozen=True)
class CpuBeside:
    """CPU seconds spent beside the scorers so far: the broker's (when it runs here), this
    process's, and the machine's idle time (all cores)."""

    broker: float | None
    reader: float
    idle: float

    @classmethod
    def now(cls, broker_pid: int | None) -> CpuBeside:
        import psutil

        def used(process: psutil.Process) -> float:
            times = process.cpu_times()
            return float(times.user + times.system)

        broker = used(psutil.Process(broker_pid)) if broker_pid is not None else None
        return cls(broker, used(psutil.Process()), float(psutil.cpu_times().idle))


def measure_pipeline(
    servers: str,
    registry_dir: Path,
    home: Path,
    docs: list[Document],
    batch: int,
    warmup: float,
    scorers: int = 1,
    threads: int = 0,
    broker_pid: int | None = None,
) -> PipelineRun:
    """The pipeline's rates; the scorers' resident memory (MB, their sum) at the end of the
    warm-up, its largest after, and its largest in each quarter after; their CPU milliseconds
    per document after the warm-up, and the broker's (``broker_pid``) and this process's, and
    the machine's idle share, over the same time."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    raw, tagged = f"{prefix}.docs.raw", f"{prefix}.docs.tagged"
    partitions = 3 * scorers
    ensure_topics(servers, [raw, tagged, f"{raw}.dlq"], partitions)
    env = {
        **os.environ,
        "ALLOOP_HOME": str(home),
        "ALLOOP_REGISTRY_DIR": str(registry_dir),
        "ALLOOP_KAFKA__BOOTSTRAP_SERVERS": servers,
        "ALLOOP_KAFKA__TOPICS__RAW": raw,
        "ALLOOP_KAFKA__TOPICS__TAGGED": tagged,
        "ALLOOP_SCORER__GROUP_ID": f"{prefix}-scorer",
        "ALLOOP_SCORER__BATCH_SIZE": str(batch),
        "ALLOOP_SCORER__THREADS": str(threads),
        "ALLOOP_KAFKA__SESSION_TIMEOUT_MS": "6000",
        "ALLOOP_KAFKA__HEARTBEAT_INTERVAL_MS": "1000",
    }
    logs = [home / f"scorer-{k}.log" for k in range(scorers)]
    processes = [
        local.spawn(
            "scorer",
            [sys.executable, "-m", "cli", "worker", "scorer", "--worker-id", f"bench-{k}"],
            log,
            env,
        )
        for k, log in enumerate(logs)
    ]
    sampler = RssSampler([process.pid for process in processes])
    kafka = KafkaSettings(session_timeout_ms=6000, heartbeat_interval_ms=1000)
    try:
        wait_for_group(processes, logs, f"{prefix}-scorer", partitions, timeout_s=180)
        sampler.start()
        consumer = make_consumer(servers, kafka, [tagged], f"{prefix}-reader")
        joined = time.monotonic() + 60
        while not consumer.assignment() and time.monotonic() < joined:
            consumer.poll(timeout_ms=100)  # joined before the first document: none read late
        producer = make_producer(servers, kafka)
        started = time.monotonic()
        for doc in docs:
            producer.send(raw, key=encode_key(doc.id), value=encode(doc))
        producer.flush()
        seen: set[str] = set()
        warm_at: float | None = None
        warm_seen = 0
        beside_warm = beside_end = CpuBeside.now(broker_pid)
        bar = tqdm(total=len(docs), desc="pipeline", unit=" docs", file=sys.stderr)
        deadline = started + 3600
        while len(seen) < len(docs) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    doc_id = decode(record.value, TaggedDocument).id
                    if doc_id not in seen:
                        seen.add(doc_id)
                        bar.update()
            if warm_at is None and len(seen) >= warmup * len(docs):
                warm_at, warm_seen = time.monotonic(), len(seen)
                beside_warm = CpuBeside.now(broker_pid)
        ended = time.monotonic()
        beside_end = CpuBeside.now(broker_pid)
        elapsed = ended - started
        bar.close()
        producer.close()
        consumer.close()
        if len(seen) < len(docs):
            raise RuntimeError(f"only {len(seen)} of {len(docs)} documents came out tagged")
    finally:
        sampler.done.set()
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)
    warm_at = warm_at or started
    before = [rss for t, rss in sampler.samples if t <= warm_at]
    after = [rss for t, rss in sampler.samples if t > warm_at]
    warm_rss = before[-1] if before else sampler.samples[0][1]
    max_after = max(after) if after else warm_rss
    span = max(ended - warm_at, 1e-9)
    quarters = [
        max(
            (
                rss
                for t, rss in sampler.samples
                if warm_at + q * span / 4 < t <= warm_at + (q + 1) * span / 4
            ),
            default=warm_rss,
        )
        / 2**20
        for q in range(4)
    ]
    cpu_warm = [c for t, c in sampler.cpu if t <= warm_at]
    cpu_end = [c for t, c in sampler.cpu if t <= ended]
    counted = len(docs) - warm_seen
    cpu_ms = (
        (cpu_end[-1] - cpu_warm[-1]) * 1000 / counted if cpu_warm and counted > 0 else float("nan")
    )
    per_doc = 1000 / counted if counted > 0 else float("nan")
    broker_ms = (
        (beside_end.broker - beside_warm.broker) * per_doc
        if beside_end.broker is not None and beside_warm.broker is not None
        else None
    )
    return PipelineRun(
        broker_cpu_ms_per_doc=broker_ms,
        reader_cpu_ms_per_doc=(beside_end.reader - beside_warm.reader) * per_doc,
        idle_share=(beside_end.idle - beside_warm.idle) / (span * (os.cpu_count() or 1)),
        docs_per_s=len(docs) / elapsed,
        steady_docs_per_s=counted / span if counted > 0 else float("nan"),
        rss_warm_mb=warm_rss / 2**20,
        rss_max_after_mb=max_after / 2**20,
        rss_quarters_mb=quarters,
        cpu_ms_per_doc=cpu_ms,
    )


def run(
    documents: int = 20_000,
    batch_size: int = 64,
    warmup: float = 0.1,
    dataset: Path = DEFAULT_DATASET,
    servers: str | None = None,
    scorers: int = 1,
    threads: int = 0,
) -> ThroughputResult:
    from loop.classification.base import ClassifierConfig
    from loop.classification.setfit import SetFitFactory
    from loop.training.seed import train_and_publish

    with tempfile.TemporaryDirectory(prefix="alloop-bench-") as scratch:
        home = Path(scratch)
        registry = ModelRegistry(home / "registry")
        seed, docs = _documents(documents, dataset)
        print(f"training a seed model on {len(seed)} tweets ...", file=sys.stderr)
        card = train_and_publish(
            seed, SetFitFactory(), registry, ClassifierConfig(num_iterations=2), promote=True
        )
        texts = [d.text for d in docs]

        def raw_side(when: str) -> tuple[float, float]:
            if scorers == 1:
                return measure_raw(registry, card.version, texts, batch_size, when, threads)
            return measure_raw_processes(
                registry, card.version, texts, batch_size, scorers, threads, when
            )

        before, cpu_before = raw_side(" (before)")
        broker: local.Service | None = None
        if servers is None:
            broker = local.start_broker(home / "stack")
            servers = broker.address or ""
        try:
            pipe = measure_pipeline(
                servers,
                registry.root,
                home,
                docs,
                batch_size,
                warmup,
                scorers,
                threads,
                broker.pid if broker is not None else None,
            )
        finally:
            if broker is not None:
                local.stop_service(broker)
        after, cpu_after = raw_side(" (after)")
    raw_rate = (before + after) / 2
    return ThroughputResult(
        documents=documents,
        batch_size=batch_size,
        scorers=scorers,
        threads=threads,
        raw_docs_per_s=round(raw_rate, 1),
        raw_before_docs_per_s=round(before, 1),
        raw_after_docs_per_s=round(after, 1),
        pipeline_docs_per_s=round(pipe.docs_per_s, 1),
        pipeline_steady_docs_per_s=round(pipe.steady_docs_per_s, 1),
        ratio=round(pipe.steady_docs_per_s / raw_rate, 3),
        ratio_whole=round(pipe.docs_per_s / raw_rate, 3),
        scorer_rss_warm_mb=round(pipe.rss_warm_mb, 1),
        scorer_rss_max_after_warmup_mb=round(pipe.rss_max_after_mb, 1),
        scorer_rss_growth=round((pipe.rss_max_after_mb - pipe.rss_warm_mb) / pipe.rss_warm_mb, 4),
        scorer_rss_quarters_mb=[round(mb, 1) for mb in pipe.rss_quarters_mb],
        raw_cpu_ms_per_doc=round((cpu_before + cpu_after) / 2, 3),
        scorer_cpu_ms_per_doc=round(pipe.cpu_ms_per_doc, 3),
        broker_cpu_ms_per_doc=(
            round(pipe.broker_cpu_ms_per_doc, 3) if pipe.broker_cpu_ms_per_doc is not None else None
        ),
        reader_cpu_ms_per_doc=round(pipe.reader_cpu_ms_per_doc, 3),
        idle_share=round(pipe.idle_share, 4),
        model_version=card.version,
        cpus=os.cpu_count() or 0,
    )


def report(result: ThroughputResult) -> str:
    lines = [
        f"documents            {result.documents} (batch size {result.batch_size}, {result.cpus} CPUs)",
        f"processes            {result.scorers} scorer(s) and as many raw model processes, "
        f"{result.threads or 'default'} torch thread(s) each",
        f"raw predict_proba    {result.raw_docs_per_s:.1f} docs/s (mean of "
        f"{result.raw_before_docs_per_s:.1f} before the pipeline and "
        f"{result.raw_after_docs_per_s:.1f} after)",
        f"pipeline             {result.pipeline_steady_docs_per_s:.1f} docs/s after the warm-up "
        f"(ingest to tagged output); {result.pipeline_docs_per_s:.1f} over the whole run",
        f"ratio                {result.ratio:.3f} after the warm-up (target >= 0.9); "
        f"{result.ratio_whole:.3f} over the whole run",
        f"scorer memory        {result.scorer_rss_warm_mb:.0f} MB after warm-up (all scorers), "
        f"max {result.scorer_rss_max_after_warmup_mb:.0f} MB after "
        f"({result.scorer_rss_growth:+.1%}, target <= +10%); largest by quarter after: "
        + ", ".join(f"{mb:.0f}" for mb in result.scorer_rss_quarters_mb)
        + " MB",
        f"CPU per document     raw {result.raw_cpu_ms_per_doc:.2f} ms, scorer "
        f"{result.scorer_cpu_ms_per_doc:.2f} ms after warm-up (every thread of every scorer)",
        "beside them          "
        + (
            f"broker {result.broker_cpu_ms_per_doc:.2f} ms, "
            if result.broker_cpu_ms_per_doc is not None
            else ""
        )
        + f"this process (reading back) {result.reader_cpu_ms_per_doc:.2f} ms per document; "
        f"CPU left idle {result.idle_share:.1%}",
        json.dumps(asdict(result)),
    ]
    return "\n".join(lines)
