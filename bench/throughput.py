"""Pipeline throughput against the raw model, and scorer memory over a long stream.

In one run, on the same documents and with the same batch size:

* pipeline: real ``alloop worker scorer`` processes on a real broker. The first ``warmup``
  fraction of the documents goes through first (the scorers' warm-up); the rest goes in
  ``rounds`` rounds, each produced at once and read back from the tagged topic until every
  document came out. A round's steady rate counts the documents tagged after its own first
  ``warmup`` fraction, over the time after it (the raw side leaves out its warm-up batch
  too); the rate over whole rounds also counts producing them and the scorers starting on them;
* raw: ``predict_proba`` on a round's texts, batch after batch, nothing else but giving free
  memory back after each batch as the scorer does, while the scorers wait idle: before the
  first round, between rounds and after the last.

The ratio is the pipeline's steady rate over the raw model's, both over all their runs. The
two sides alternate every few seconds, so a shared machine that gets faster or slower during
the run (other work on the host) moves both alike; until issue 16's seventh session the raw
model ran once before and once after the whole pipeline, and the two runs differed by up to
16 %. Each round's ratio against the raw runs just before and after it shows the spread.

With ``scorers`` above 1, the pipeline runs that many scorer processes in one consumer group
(the raw topic gets three partitions per scorer, and the documents are spread evenly over
them, so that each scorer has the same share) and the raw side runs the model in as many
processes at once, each on its own share of the batches; with ``threads``, every one of them
runs its model on that many torch threads (``ALLOOP_SCORER__THREADS``). Both sides always
have the same shape, so the ratio compares like with like, and the rates say which shape tags
more on this machine.

The scorers' resident memory (their sum) is sampled throughout; growth is measured from the
end of the warm-up to the largest sample after it. Beside the rates: the CPU time per document
of the raw processes and of the scorers (in the rounds after their warm-ups: on a shared
machine it moves less than wall time, and it counts what the pipeline's threads do beside the
model), and over the same time the broker's and this process's, and the share of the
machine's CPU left idle.
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
    """Documents used: the warm-up and the rounds, each a whole number of batches per
    partition (up to that many fewer than asked for)."""
    batch_size: int
    scorers: int
    """Scorer processes in the pipeline, and raw model processes beside it."""
    threads: int
    """torch threads per process (0: torch's default, one per core)."""
    rounds: int
    """Rounds of documents through the pipeline, each between two runs of the raw model."""
    raw_docs_per_s: float
    """The raw model's rate over all its runs (their documents over their time)."""
    raw_runs_docs_per_s: list[float]
    """Each run of the raw model: before the first round, between rounds, after the last."""
    pipeline_docs_per_s: float
    """Over the rounds, each from its first document produced to its last tagged."""
    pipeline_steady_docs_per_s: float
    """Over the rounds after each one's warm-up: the documents tagged after it over the time
    after it."""
    pipeline_rounds_docs_per_s: list[float]
    """Each round's steady rate."""
    ratio: float
    """The steady pipeline rate over ``raw_docs_per_s``."""
    ratio_whole: float
    """The pipeline's rate over whole rounds over ``raw_docs_per_s``."""
    round_ratios: list[float]
    """Each round's steady rate over the mean of the raw runs just before and just after it."""
    scorer_rss_warm_mb: float
    scorer_rss_max_after_warmup_mb: float
    scorer_rss_growth: float
    scorer_rss_quarters_mb: list[float]
    """The largest resident memory in each quarter of the time after the warm-up: flat
    memory levels off, a leak climbs quarter after quarter."""
    raw_cpu_ms_per_doc: float
    """The raw model's CPU time per document over all its runs."""
    scorer_cpu_ms_per_doc: float
    """The scorer processes' CPU time per document, in the rounds after their warm-ups."""
    broker_cpu_ms_per_doc: float | None
    """The local broker's, over the same time (None with ``ALLOOP_KAFKA__BOOTSTRAP_SERVERS``)."""
    reader_cpu_ms_per_doc: float
    """This process's, over the same time: producing the round, reading the tagged topic back
    and sampling the scorers, on the same cores as the pipeline."""
    idle_share: float
    """The share of the machine's CPU time left idle over the same time."""
    steal_share: float
    """The share the hypervisor gave to other machines over the same time (a virtual machine
    on a shared host; 0 elsewhere)."""
    model_version: str
    cpus: int


def _documents(count: int, dataset: Path) -> tuple[list[Document], list[Document]]:
    """A training seed and ``count`` stream documents (tweets, cycled, with unique ids)."""
    tweets = read_tweets(dataset)
    seed = take_per_label(tweets, 8)
    stream = [Document(id=f"bench-{i}", text=tweets[i % len(tweets)].text) for i in range(count)]
    return seed, stream


class RssSampler(threading.Thread):
    """Samples the resident memory of processes (their sum) every ``interval`` seconds."""

    def __init__(self, pids: list[int], interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        import psutil

        self.processes = [psutil.Process(pid) for pid in pids]
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                now = time.monotonic()
                self.samples.append((now, sum(p.memory_info().rss for p in self.processes)))
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


DEFAULT_ROUNDS = 4
"""Rounds of documents through the pipeline after the warm-up (``--rounds``)."""


@dataclass(frozen=True)
class CpuSoFar:
    """CPU seconds spent so far by the scorers (their sum), the broker (when it runs here) and
    this process, and the machine's idle and stolen time (all cores)."""

    scorers: float
    broker: float | None
    reader: float
    idle: float
    steal: float

    @classmethod
    def now(cls, scorer_pids: list[int], broker_pid: int | None) -> CpuSoFar:
        import psutil

        def used(process: psutil.Process) -> float:
            times = process.cpu_times()
            return float(times.user + times.system)

        machine = psutil.cpu_times()
        return cls(
            scorers=sum(used(psutil.Process(pid)) for pid in scorer_pids),
            broker=used(psutil.Process(broker_pid)) if broker_pid is not None else None,
            reader=used(psutil.Process()),
            idle=float(machine.idle),
            steal=float(getattr(machine, "steal", 0.0)),
        )


@dataclass
class Round:
    """One round of documents through the pipeline."""

    documents: int
    started: float
    """When producing began (``time.monotonic()``)."""
    warm_at: float
    """When the round's first ``warmup`` fraction had come out tagged."""
    counted: int
    """The documents tagged after ``warm_at``."""
    ended: float
    """When the last one came out."""
    at_warm: CpuSoFar
    at_end: CpuSoFar

    @property
    def steady_docs_per_s(self) -> float:
        return self.counted / max(self.ended - self.warm_at, 1e-9)


class Pipeline:
    """``scorers`` real scorer processes in one consumer group on topics of their own, a
    reader of the tagged topic that joined before anything was produced, and the scorers'
    memory sampled throughout. Use it as a context manager; :meth:`feed` sends documents
    through it."""

    def __init__(
        self,
        servers: str,
        registry_dir: Path,
        home: Path,
        batch: int,
        scorers: int = 1,
        threads: int = 0,
        broker_pid: int | None = None,
    ) -> None:
        prefix = f"bench-{uuid.uuid4().hex[:8]}"
        self.servers, self.broker_pid = servers, broker_pid
        self.raw, self.tagged = f"{prefix}.docs.raw", f"{prefix}.docs.tagged"
        self.group = f"{prefix}-scorer"
        self.partitions = 3 * scorers
        self.produced = 0
        self.env = {
            **os.environ,
            "ALLOOP_HOME": str(home),
            "ALLOOP_REGISTRY_DIR": str(registry_dir),
            "ALLOOP_KAFKA__BOOTSTRAP_SERVERS": servers,
            "ALLOOP_KAFKA__TOPICS__RAW": self.raw,
            "ALLOOP_KAFKA__TOPICS__TAGGED": self.tagged,
            "ALLOOP_SCORER__GROUP_ID": self.group,
            "ALLOOP_SCORER__BATCH_SIZE": str(batch),
            "ALLOOP_SCORER__THREADS": str(threads),
            "ALLOOP_KAFKA__SESSION_TIMEOUT_MS": "6000",
            "ALLOOP_KAFKA__HEARTBEAT_INTERVAL_MS": "1000",
        }
        self.logs = [home / f"scorer-{k}.log" for k in range(scorers)]
        self.processes: list[Any] = []
        self.sampler: RssSampler | None = None
        self.consumer: Any = None
        self.producer: Any = None

    def __enter__(self) -> Pipeline:
        ensure_topics(self.servers, [self.raw, self.tagged, f"{self.raw}.dlq"], self.partitions)
        try:
            for k, log in enumerate(self.logs):
                command = [sys.executable, "-m", "cli", "worker", "scorer", "--worker-id"]
                self.processes.append(
                    local.spawn("scorer", [*command, f"bench-{k}"], log, self.env)
                )
            wait_for_group(self.processes, self.logs, self.group, self.partitions, timeout_s=180)
            self.sampler = RssSampler([process.pid for process in self.processes])
            self.sampler.start()
            kafka = KafkaSettings(session_timeout_ms=6000, heartbeat_interval_ms=1000)
            self.consumer = make_consumer(
                self.servers, kafka, [self.tagged], f"{self.group}-reader"
            )
            joined = time.monotonic() + 60
            while not self.consumer.assignment() and time.monotonic() < joined:
                self.consumer.poll(timeout_ms=100)  # joined before the first document
            self.producer = make_producer(self.servers, kafka)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        if self.producer is not None:
            self.producer.close()
        if self.consumer is not None:
            self.consumer.close()
        if self.sampler is not None:
            self.sampler.done.set()
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(timeout=60)

    def cpu(self) -> CpuSoFar:
        return CpuSoFar.now([process.pid for process in self.processes], self.broker_pid)

    def feed(self, docs: list[Document], warmup: float, bar: Any) -> Round:
        """Produce ``docs`` (spread evenly over the partitions, so that every scorer gets the
        same share, as every raw model process does) and read the tagged topic until each
        came out."""
        started = time.monotonic()
        for doc in docs:
            partition = self.produced % self.partitions
            self.producer.send(
                self.raw, key=encode_key(doc.id), value=encode(doc), partition=partition
            )
            self.produced += 1
        self.producer.flush()
        pending = {doc.id for doc in docs}
        warm_count = max(1, min(len(docs) - 1, round(warmup * len(docs))))
        warm: tuple[float, int, CpuSoFar] | None = None
        deadline = started + 3600
        while pending and time.monotonic() < deadline:
            for records in self.consumer.poll(timeout_ms=500).values():
                for record in records:
                    doc_id = decode(record.value, TaggedDocument).id
                    if doc_id in pending:
                        pending.discard(doc_id)
                        bar.update()
            for process, log in zip(self.processes, self.logs, strict=True):
                if process.poll() is not None:  # before reading its CPU time: it has none
                    tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
                    raise RuntimeError(f"a scorer exited (code {process.returncode}):\n{tail}")
            done = len(docs) - len(pending)
            if warm is None and done >= warm_count:
                warm = (time.monotonic(), done, self.cpu())
        ended, at_end = time.monotonic(), self.cpu()
        if pending:
            raise RuntimeError(
                f"only {len(docs) - len(pending)} of {len(docs)} documents came out tagged"
            )
        assert warm is not None
        warm_at, warm_done, at_warm = warm
        return Round(len(docs), started, warm_at, len(docs) - warm_done, ended, at_warm, at_end)


def rounds_of(
    docs: list[Document], warmup: float, rounds: int, unit: int = 1
) -> tuple[list[Document], list[list[Document]]]:
    """The warm-up's documents (about the first ``warmup`` fraction) and ``rounds`` rounds of
    the same size after it, every part a multiple of ``unit`` documents (what is left over is
    not used).

    With ``unit`` the batch size times the partitions, and the documents spread evenly over
    the partitions, every scorer's share of a round is whole batches: none waits at the end
    of a round for a batch to fill (``ALLOOP_SCORER__MAX_WAIT_MS``), which in a stream it
    would not do."""
    warm = max(unit, round(warmup * len(docs) / unit) * unit)
    size = (len(docs) - warm) // rounds // unit * unit
    if size == 0:
        raise ValueError(
            f"{len(docs)} documents are too few for {rounds} rounds of {unit} after the warm-up"
        )
    rest = docs[warm:]
    return docs[:warm], [rest[k * size : (k + 1) * size] for k in range(rounds)]


def run(
    documents: int = 20_000,
    batch_size: int = 64,
    warmup: float = 0.1,
    dataset: Path = DEFAULT_DATASET,
    servers: str | None = None,
    scorers: int = 1,
    threads: int = 0,
    rounds: int = DEFAULT_ROUNDS,
) -> ThroughputResult:
    from loop.classification.base import ClassifierConfig
    from loop.classification.setfit import SetFitFactory
    from loop.training.seed import train_and_publish

    with tempfile.TemporaryDirectory(prefix="alloop-bench-") as scratch:
        home = Path(scratch)
        registry = ModelRegistry(home / "registry")
        seed, docs = _documents(documents, dataset)
        warm_docs, parts = rounds_of(docs, warmup, rounds, batch_size * 3 * scorers)
        used = len(warm_docs) + sum(len(part) for part in parts)
        print(f"training a seed model on {len(seed)} tweets ...", file=sys.stderr)
        card = train_and_publish(
            seed, SetFitFactory(), registry, ClassifierConfig(num_iterations=2), promote=True
        )

        raw_runs: list[tuple[int, float, float]] = []  # documents, rate, CPU ms per document

        def raw_side(k: int) -> None:
            texts = [d.text for d in parts[min(k, rounds - 1)]]
            when = f" ({k + 1} of {rounds + 1})"
            if scorers == 1:
                rate, cpu = measure_raw(registry, card.version, texts, batch_size, when, threads)
            else:
                rate, cpu = measure_raw_processes(
                    registry, card.version, texts, batch_size, scorers, threads, when
                )
            raw_runs.append((len(texts), rate, cpu))

        broker: local.Service | None = None
        if servers is None:
            broker = local.start_broker(home / "stack")
            servers = broker.address or ""
        done: list[Round] = []
        try:
            pipeline = Pipeline(
                servers,
                registry.root,
                home,
                batch_size,
                scorers,
                threads,
                broker.pid if broker is not None else None,
            )
            with (
                pipeline,
                tqdm(total=used, desc="pipeline", unit=" docs", file=sys.stderr) as bar,
            ):
                pipeline.feed(warm_docs, warmup, bar)  # the scorers' warm-up: not counted
                warm_end = time.monotonic()
                raw_side(0)
                for k, part in enumerate(parts):
                    done.append(pipeline.feed(part, warmup, bar))
                    raw_side(k + 1)
                assert pipeline.sampler is not None
                samples = list(pipeline.sampler.samples)
        finally:
            if broker is not None:
                local.stop_service(broker)
    return _result(
        used, batch_size, scorers, threads, raw_runs, done, samples, warm_end, card.version
    )


def _result(
    documents: int,
    batch_size: int,
    scorers: int,
    threads: int,
    raw_runs: list[tuple[int, float, float]],
    rounds: list[Round],
    samples: list[tuple[float, int]],
    warm_end: float,
    version: str,
) -> ThroughputResult:
    raw_docs = sum(count for count, _, _ in raw_runs)
    raw_rate = raw_docs / sum(count / rate for count, rate, _ in raw_runs)
    raw_cpu = sum(count * cpu for count, _, cpu in raw_runs) / raw_docs
    counted = sum(r.counted for r in rounds)
    steady_s = sum(r.ended - r.warm_at for r in rounds)
    steady = counted / steady_s
    whole = sum(r.documents for r in rounds) / sum(r.ended - r.started for r in rounds)

    def spent(part: str) -> float | None:
        """CPU seconds of ``part`` (a :class:`CpuSoFar` field) over the rounds' steady parts."""
        marks = [(getattr(r.at_warm, part), getattr(r.at_end, part)) for r in rounds]
        if any(start is None or end is None for start, end in marks):
            return None
        return float(sum(end - start for start, end in marks))

    def per_doc(part: str) -> float | None:
        seconds = spent(part)
        return None if seconds is None else round(seconds * 1000 / counted, 3)

    def share(part: str) -> float:
        return round((spent(part) or 0.0) / (steady_s * (os.cpu_count() or 1)), 4)

    rates = [rate for _, rate, _ in raw_runs]
    before = [rss for t, rss in samples if t <= warm_end]
    after = [(t, rss) for t, rss in samples if t > warm_end]
    warm_rss = before[-1] if before else samples[0][1]
    max_rss = max((rss for _, rss in after), default=warm_rss)
    end = after[-1][0] if after else warm_end
    quarter = max(end - warm_end, 1e-9) / 4
    quarters = [
        max(
            (rss for t, rss in after if warm_end + q * quarter < t <= warm_end + (q + 1) * quarter),
            default=warm_rss,
        )
        for q in range(4)
    ]
    return ThroughputResult(
        documents=documents,
        batch_size=batch_size,
        scorers=scorers,
        threads=threads,
        rounds=len(rounds),
        raw_docs_per_s=round(raw_rate, 1),
        raw_runs_docs_per_s=[round(rate, 1) for rate in rates],
        pipeline_docs_per_s=round(whole, 1),
        pipeline_steady_docs_per_s=round(steady, 1),
        pipeline_rounds_docs_per_s=[round(r.steady_docs_per_s, 1) for r in rounds],
        ratio=round(steady / raw_rate, 3),
        ratio_whole=round(whole / raw_rate, 3),
        round_ratios=[
            round(r.steady_docs_per_s / ((rates[k] + rates[k + 1]) / 2), 3)
            for k, r in enumerate(rounds)
        ],
        scorer_rss_warm_mb=round(warm_rss / 2**20, 1),
        scorer_rss_max_after_warmup_mb=round(max_rss / 2**20, 1),
        scorer_rss_growth=round((max_rss - warm_rss) / warm_rss, 4),
        scorer_rss_quarters_mb=[round(rss / 2**20, 1) for rss in quarters],
        raw_cpu_ms_per_doc=round(raw_cpu, 3),
        scorer_cpu_ms_per_doc=per_doc("scorers") or 0.0,
        broker_cpu_ms_per_doc=per_doc("broker"),
        reader_cpu_ms_per_doc=per_doc("reader") or 0.0,
        idle_share=share("idle"),
        steal_share=share("steal"),
        model_version=version,
        cpus=os.cpu_count() or 0,
    )


def report(result: ThroughputResult) -> str:
    lines = [
        f"documents            {result.documents} (batch size {result.batch_size}, {result.cpus} CPUs)",
        f"processes            {result.scorers} scorer(s) and as many raw model processes, "
        f"{result.threads or 'default'} torch thread(s) each",
        f"raw predict_proba    {result.raw_docs_per_s:.1f} docs/s over {len(result.raw_runs_docs_per_s)} "
        "runs (" + ", ".join(f"{rate:.1f}" for rate in result.raw_runs_docs_per_s) + ")",
        f"pipeline             {result.pipeline_steady_docs_per_s:.1f} docs/s after each round's "
        f"warm-up over {result.rounds} rounds ("
        + ", ".join(f"{rate:.1f}" for rate in result.pipeline_rounds_docs_per_s)
        + f"); {result.pipeline_docs_per_s:.1f} over whole rounds",
        f"ratio                {result.ratio:.3f} (target >= 0.9); by round against the raw runs "
        "beside it: "
        + ", ".join(f"{ratio:.3f}" for ratio in result.round_ratios)
        + f"; {result.ratio_whole:.3f} over whole rounds",
        f"scorer memory        {result.scorer_rss_warm_mb:.0f} MB after warm-up (all scorers), "
        f"max {result.scorer_rss_max_after_warmup_mb:.0f} MB after "
        f"({result.scorer_rss_growth:+.1%}, target <= +10%); largest by quarter after: "
        + ", ".join(f"{mb:.0f}" for mb in result.scorer_rss_quarters_mb)
        + " MB",
        f"CPU per document     raw {result.raw_cpu_ms_per_doc:.2f} ms, scorer "
        f"{result.scorer_cpu_ms_per_doc:.2f} ms in the rounds (every thread of every scorer)",
        "beside them          "
        + (
            f"broker {result.broker_cpu_ms_per_doc:.2f} ms, "
            if result.broker_cpu_ms_per_doc is not None
            else ""
        )
        + f"this process (producing, reading back) {result.reader_cpu_ms_per_doc:.2f} ms per "
        "document; "
        f"CPU left idle {result.idle_share:.1%}, taken by the host {result.steal_share:.1%}",
        json.dumps(asdict(result)),
    ]
    return "\n".join(lines)
