"""The scorer with both tasks on, in its fast configuration against the float32 path, on the
same documents in one process (``alloop bench throughput --tasks classification,entities``).

Three scorers (:class:`workers.scorer.Scorer`, the scorer's whole batch handler: decoding,
classifier, entity tagger and patterns, JSON encoding, the evaluation sample, the selection
windows and rounds, and the drift monitor when it is on) are built on the same promoted
versions and handed the same batches of records, batch after batch, rotating which goes
first, so that a loaded machine slows them alike:

* before: the float32 path before fixed-width batches (bench/legacy_encoding.py), the
  baseline of issue 16;
* float32: ``ALLOOP_PRECISION=float32``, fixed-width batches, the entity tagger in its own
  thread beside the classifier;
* fast: the scorer as configured (``ALLOOP_PRECISION``; the default ``auto`` is int8 where
  the CPU has int8 dot products (VNNI), else bfloat16 where it has that in hardware, else
  float32).

Each side's speed is documents per CPU-second of this process while it handled its batches
(``time.process_time``), which a machine shared with other work disturbs far less than wall
time, and documents per second of wall time. ``speedup`` is fast over before in documents per
second (the issue's figure: both cores busy count), ``speedup_cpu`` the same per CPU-second. What the broker adds is the
classification-only run's business (``alloop bench throughput``). Quality: macro-F1 of each
side's tagged labels against the tweets' gold labels (the seed's tweets left out), and strict
span F1 of each side's tagger on 400 validation tweets tagged by the financial patterns (the
seed tagger learnt from training tweets tagged the same way). Memory: this process's resident
memory after the warm-up batches against the largest sample after them.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from loop.errors import ConfigError
from loop.messages import Document, TaggedDocument, decode, encode
from loop.settings import Settings

TARGETS = {"speedup": 3.0, "macro_f1_delta": -0.005, "entity_f1_delta": -0.01, "rss_growth": 0.1}


SIDES = ("before", "float32", "fast")


@dataclass
class TasksThroughputResult:
    documents: int
    batch_size: int
    tasks: list[str]
    precision: str
    """What the fast side computes in here (``ALLOOP_PRECISION`` resolved)."""
    before_docs_per_cpu_s: float
    float32_docs_per_cpu_s: float
    fast_docs_per_cpu_s: float
    speedup: float
    """Fast over before, documents per second (wall): what a user of the machine gets."""
    speedup_cpu: float
    """Fast over before, documents per CPU-second: what the work costs, which other jobs on
    the machine disturb far less than wall time."""
    speedup_over_float32: float
    """Fast over float32 with fixed-width batches, per CPU-second: what int8 or bfloat16
    adds."""
    before_docs_per_s: float
    float32_docs_per_s: float
    fast_docs_per_s: float
    """Wall-clock rates (disturbed by whatever else the machine runs)."""
    before_macro_f1: float
    fast_macro_f1: float
    macro_f1_delta: float
    before_entity_f1: float | None
    fast_entity_f1: float | None
    entity_f1_delta: float | None
    identical_tagged: float
    """Share of documents whose tagged bytes are the same on the float32 and fast sides."""
    rss_warm_mb: float
    rss_max_after_warmup_mb: float
    rss_growth: float
    model_version: str
    entity_version: str | None
    cpus: int


def macro_f1(gold: Sequence[str], predicted: Sequence[str | None]) -> float:
    """Macro-F1 over the gold labels (a missing prediction counts as wrong)."""
    from sklearn.metrics import f1_score

    labels = sorted(set(gold))
    answers = [p if p is not None else "" for p in predicted]
    return float(f1_score(list(gold), answers, labels=labels, average="macro", zero_division=0))


def span_f1(gold: Sequence[Sequence[Any]], predicted: Sequence[Sequence[Any]]) -> float:
    """Strict micro span F1 (type and both offsets must match), documents paired by position."""
    from loop.entities.metrics import micro, span_counts

    return round(micro(span_counts(gold, predicted).values()).f1, 4)


def growth(samples: Sequence[int], warm_at: int) -> tuple[float, float, float]:
    """Resident memory at the end of the warm-up (the sample at ``warm_at``), the largest
    sample after it (MB) and the growth between them (a fraction)."""
    if not samples:
        return 0.0, 0.0, 0.0
    warm = samples[min(warm_at, len(samples) - 1)]
    after = max(samples[warm_at:], default=warm)
    return warm / 2**20, after / 2**20, (after - warm) / warm if warm else 0.0


def summarise(
    cpu_s: dict[str, float],
    wall_s: dict[str, float],
    documents: int,
    quality: dict[str, tuple[float, float | None]],
) -> dict[str, float | None]:
    """Rates of every side and the fast side against ``before``: ``cpu_s``, ``wall_s`` and
    ``quality`` (macro-F1, entity F1 or None) keyed by side."""
    rate = {side: documents / cpu_s[side] for side in cpu_s}
    figures: dict[str, float | None] = {}
    for side in cpu_s:
        figures[f"{side}_docs_per_cpu_s"] = round(rate[side], 1)
        figures[f"{side}_docs_per_s"] = round(documents / wall_s[side], 1)
    figures["speedup"] = round(wall_s["before"] / wall_s["fast"], 3)
    figures["speedup_cpu"] = round(rate["fast"] / rate["before"], 3)
    if "float32" in rate:
        figures["speedup_over_float32"] = round(rate["fast"] / rate["float32"], 3)
    figures["macro_f1_delta"] = round(quality["fast"][0] - quality["before"][0], 4)
    before_entity, fast_entity = quality["before"][1], quality["fast"][1]
    figures["entity_f1_delta"] = (
        None
        if before_entity is None or fast_entity is None
        else round(fast_entity - before_entity, 4)
    )
    return figures


def _stream(count: int, dataset: Path, seed_ids: set[str]) -> tuple[list[Document], list[str]]:
    """``count`` labelled tweets outside the seed (cycled, with unique ids) and their labels."""
    from loop.datasets import read_tweets

    tweets = [t for t in read_tweets(dataset) if t.id not in seed_ids and t.label]
    docs = [Document(id=f"bench-{i}", text=tweets[i % len(tweets)].text) for i in range(count)]
    return docs, [str(tweets[i % len(tweets)].label) for i in range(count)]


def _scorer(settings: Settings, scorer_class: Any, side: str) -> Any:
    """A scorer on the promoted versions, computing as ``side`` says."""
    from bench.legacy_encoding import legacy_scorer
    from loop.classification.serving import ModelWatcher
    from loop.embeddings.precision import Precision
    from loop.registry import ModelRegistry

    precision = settings.precision if side == "fast" else Precision.FLOAT32
    settings = settings.model_copy(update={"precision": precision})
    watcher = ModelWatcher(ModelRegistry(settings.registry_path), precision)
    watcher.refresh()
    scorer = scorer_class(settings, watcher, f"bench-{side}")
    if side == "before":
        legacy_scorer(scorer)
    return scorer


def run(
    settings: Settings,
    scorer_class: Any,
    documents: int = 2_000,
    batch_size: int = 64,
    warmup: float = 0.1,
    tasks: Sequence[str] = ("classification", "entities"),
    dataset: Path | None = None,
) -> TasksThroughputResult:
    """Train the seed versions in a scratch folder, then run the three scorers on the stream.

    ``scorer_class``: :class:`workers.scorer.Scorer` (given by the command: bench does not
    import workers)."""
    import psutil

    from bench.seed_models import entity_test_set, in_folder, seed_classifier, seed_tagger
    from loop.datasets import DEFAULT_DATASET, read_tweets, take_per_label
    from loop.embeddings.precision import resolved
    from loop.memory import release_free_memory
    from loop.registry import ModelRegistry
    from loop.testing.records import Record

    tasks = [name.strip() for name in tasks if name.strip()]
    unknown = set(tasks) - {"classification", "entities"}
    if unknown or "classification" not in tasks:
        raise ConfigError(f"--tasks: classification, optionally with entities, not {list(tasks)}")
    dataset = dataset or DEFAULT_DATASET
    entities = "entities" in tasks
    with tempfile.TemporaryDirectory(prefix="alloop-bench-tasks-") as scratch:
        base = in_folder(settings, Path(scratch), entities)
        card = seed_classifier(ModelRegistry(base.registry_path), dataset)
        entity_card = (
            seed_tagger(ModelRegistry(base.entity_registry_path), dataset) if entities else None
        )
        seed_ids = {d.id for d in take_per_label(read_tweets(dataset), 8)}
        docs, gold = _stream(documents, dataset, seed_ids)
        scorers = {side: _scorer(base, scorer_class, side) for side in SIDES}
        records = [
            Record("docs.raw", 0, i, d.id.encode(), encode(d), []) for i, d in enumerate(docs)
        ]
        tagged_topic = base.kafka.topics.tagged
        cpu = dict.fromkeys(scorers, 0.0)
        wall = dict.fromkeys(scorers, 0.0)
        out: dict[str, dict[str, bytes]] = {side: {} for side in scorers}
        process = psutil.Process()
        rss: list[int] = []
        batches = range(0, len(records), batch_size)
        warm_batches = max(1, round(warmup * len(batches)))
        for number, first in enumerate(tqdm(batches, desc="three scorers", file=sys.stderr)):
            batch = records[first : first + batch_size]
            shift = number % len(SIDES)
            for side in SIDES[shift:] + SIDES[:shift]:
                started_cpu, started = time.process_time(), time.perf_counter()
                outputs = scorers[side].handle(batch)
                release_free_memory()  # as the scorer does after each batch
                if number >= warm_batches or len(batches) <= warm_batches:
                    cpu[side] += time.process_time() - started_cpu
                    wall[side] += time.perf_counter() - started
                out[side].update((o.key, o.value) for o in outputs if o.topic == tagged_topic)
            gc.collect()
            rss.append(process.memory_info().rss)
        timed = sum(len(records[f : f + batch_size]) for f in list(batches)[warm_batches:])
        test = entity_test_set(dataset) if entities else []
        quality: dict[str, tuple[float, float | None]] = {}
        for side, scorer in scorers.items():
            labels = {k: decode(v, TaggedDocument).label for k, v in out[side].items()}
            f1 = macro_f1(gold, [labels.get(d.id) for d in docs])
            entity_f1 = None
            if entities and scorer.entities is not None and scorer.entities.served is not None:
                found = scorer.entities.served.extractor.predict([e.text for e in test], 32)
                entity_f1 = span_f1([e.spans for e in test], found)
            quality[side] = (round(f1, 4), entity_f1)
        same = sum(out["fast"].get(k) == v for k, v in out["float32"].items())
        figures = summarise(cpu, wall, timed or len(records), quality)
        warm_mb, max_mb, grown = growth(rss, warm_batches - 1)

    def figure(name: str) -> float:
        return float(figures[name] or 0)

    return TasksThroughputResult(
        documents=len(docs),
        batch_size=batch_size,
        tasks=list(tasks),
        precision=resolved(settings.precision).value,
        before_docs_per_cpu_s=figure("before_docs_per_cpu_s"),
        float32_docs_per_cpu_s=figure("float32_docs_per_cpu_s"),
        fast_docs_per_cpu_s=figure("fast_docs_per_cpu_s"),
        speedup=figure("speedup"),
        speedup_cpu=figure("speedup_cpu"),
        speedup_over_float32=figure("speedup_over_float32"),
        before_docs_per_s=figure("before_docs_per_s"),
        float32_docs_per_s=figure("float32_docs_per_s"),
        fast_docs_per_s=figure("fast_docs_per_s"),
        before_macro_f1=quality["before"][0],
        fast_macro_f1=quality["fast"][0],
        macro_f1_delta=figure("macro_f1_delta"),
        before_entity_f1=quality["before"][1],
        fast_entity_f1=quality["fast"][1],
        entity_f1_delta=figures["entity_f1_delta"],
        identical_tagged=round(same / max(1, len(out["float32"])), 4),
        rss_warm_mb=round(warm_mb, 1),
        rss_max_after_warmup_mb=round(max_mb, 1),
        rss_growth=round(grown, 4),
        model_version=card.version,
        entity_version=entity_card.version if entity_card is not None else None,
        cpus=os.cpu_count() or 0,
    )


def report(result: TasksThroughputResult) -> str:
    entity = (
        f"{result.before_entity_f1} -> {result.fast_entity_f1} ({result.entity_f1_delta:+.4f}, "
        f"target >= {TARGETS['entity_f1_delta']})"
        if result.entity_f1_delta is not None
        else "not measured (entities off)"
    )
    lines = [
        f"documents        {result.documents} (batch size {result.batch_size}, tasks "
        f"{','.join(result.tasks)}, {result.cpus} CPUs)",
        f"fast path        both encoders in {result.precision}, fixed-width batches",
        f"before           {result.before_docs_per_cpu_s:.1f} docs per CPU-second "
        f"({result.before_docs_per_s:.1f} docs/s wall): float32, batches padded to their longest",
        f"float32          {result.float32_docs_per_cpu_s:.1f} docs per CPU-second "
        f"({result.float32_docs_per_s:.1f} docs/s wall): float32, fixed-width batches",
        f"fast             {result.fast_docs_per_cpu_s:.1f} docs per CPU-second "
        f"({result.fast_docs_per_s:.1f} docs/s wall)",
        f"speedup          {result.speedup:.3f} over before in docs/s (target >= "
        f"{TARGETS['speedup']:g}); per CPU-second {result.speedup_cpu:.3f} over before, "
        f"{result.speedup_over_float32:.3f} over float32",
        f"macro-F1         {result.before_macro_f1} -> {result.fast_macro_f1} "
        f"({result.macro_f1_delta:+.4f}, target >= {TARGETS['macro_f1_delta']})",
        f"entity F1        {entity}",
        f"same bytes       {result.identical_tagged:.2%} of tagged documents (float32 and fast)",
        f"memory           {result.rss_warm_mb:.0f} MB after warm-up, max "
        f"{result.rss_max_after_warmup_mb:.0f} MB after ({result.rss_growth:+.1%}, target <= +10%)",
        json.dumps(asdict(result)),
    ]
    return "\n".join(lines)
