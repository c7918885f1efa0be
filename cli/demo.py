"""``alloop demo``: the whole backbone on the local stack with real financial tweets.

Starts the broker, trains a seed model on a few labelled tweets per class, starts a scorer and
the API, streams the rest of the tweets through, and shows what came out.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import httpx
from tqdm import tqdm

from cli.demo_processes import api_key, ensure_api, ensure_scorer, ensure_worker
from cli.demo_rounds import ENTITY_PHASES, entity_loop, evaluation_sample, label_loop, phases
from connectors.ingest import publish
from connectors.kafka import ensure_topics, make_consumer, make_producer
from loop.datasets import DEFAULT_DATASET, read_tweets, take_per_label
from loop.messages import Document, TaggedDocument, decode
from loop.registry import ModelRegistry
from loop.settings import Settings
from stack import local

logger = logging.getLogger(__name__)


@dataclass
class StreamResult:
    tagged: dict[str, TaggedDocument]
    seconds: float


def collect_tagged(
    settings: Settings, servers: str, wanted: set[str], since_ms: int, timeout_s: float
) -> StreamResult:
    """Read docs.tagged until every wanted id came out (records produced after ``since_ms``)."""
    topics = settings.kafka.topics
    consumer = make_consumer(
        servers, settings.kafka, [topics.tagged], f"alloop-demo-{uuid.uuid4().hex[:8]}"
    )
    tagged: dict[str, TaggedDocument] = {}
    last_ms = since_ms
    deadline = time.monotonic() + timeout_s
    bar = tqdm(total=len(wanted), unit=" docs", desc="tagged", file=sys.stderr)
    try:
        while len(tagged) < len(wanted) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    if record.timestamp < since_ms:
                        continue
                    doc = decode(record.value, TaggedDocument)
                    if doc.id in wanted and doc.id not in tagged:
                        tagged[doc.id] = doc
                        last_ms = max(last_ms, record.timestamp)
                        bar.update()
    finally:
        bar.close()
        consumer.close()
    return StreamResult(tagged, max(last_ms - since_ms, 1) / 1000)


def run(
    settings: Settings,
    dataset: Path = DEFAULT_DATASET,
    seed_per_label: int = 16,
    limit: int | None = None,
    iterations: int = 10,
    retrain: bool = False,
    argilla: bool = True,
    oracle_labels: int = 60,
    entities: bool = True,
    entity_labels: int = 20,
) -> None:
    out = sys.stdout
    if not (dataset / "sent_train.csv").is_file():
        raise local.StackError(f"the demo dataset is not at {dataset} (use --dataset)")
    print(
        f"library log  {settings.library_log}  (what the libraries under alloop say: "
        "their warnings and progress)",
        file=out,
    )
    print(f"worker logs  {settings.state_dir / 'logs'}", file=out)
    local_argilla = argilla and not settings.argilla.url
    starter = None
    if local_argilla:
        from stack.argilla import starter as argilla_starter

        starter = argilla_starter(settings)
    state = local.up(
        settings.state_dir,
        starter,
        broker=not settings.kafka.bootstrap_servers,
        storage=settings.stack.broker_storage,
    )
    servers = settings.kafka.bootstrap_servers or state.services["broker"].address or ""
    print(f"broker       {servers}", file=out)

    docs = read_tweets(dataset)
    seed = take_per_label(docs, seed_per_label)
    seed_ids = {d.id for d in seed}
    stream = [d for d in docs if d.id not in seed_ids][:limit]
    registry = ModelRegistry(settings.registry_path)
    if retrain or registry.promoted() is None:
        from loop.classification.base import ClassifierConfig
        from loop.classification.setfit import SetFitFactory
        from loop.labels import LabelStore
        from loop.training.seed import seed_labels, train_and_publish

        # The seed labels go into the label store too, so the trainer's rounds build on them.
        seed_labels(seed, LabelStore(settings.labels_path), settings.trainer.task)
        print(f"training a seed model on {len(seed)} labelled tweets ...", file=out, flush=True)
        started = time.monotonic()
        config = ClassifierConfig(num_iterations=iterations, head_c=settings.trainer.head_c)
        card = train_and_publish(
            seed,
            SetFitFactory(),
            registry,
            config,
            promote=True,
            notes="demo seed model",
        )
        print(f"model        {card.version} trained in {time.monotonic() - started:.0f}s", file=out)
    else:
        print(
            f"model        {registry.promoted()} (already promoted; --retrain for a new one)",
            file=out,
        )

    topics = settings.kafka.topics
    ensure_topics(servers, [topics.raw, topics.tagged, topics.dlq(topics.raw)], topics.partitions)
    env = {"ALLOOP_HOME": str(settings.home), "ALLOOP_KAFKA__BOOTSTRAP_SERVERS": servers}
    if entities:
        # STOCK, CRYPTO, FOREX from the shipped patterns; a round after every few answers.
        env["ALLOOP_ENTITIES__ENABLED"] = "true"
        if "ALLOOP_ENTITIES__MIN_NEW_LABELS" not in os.environ:
            phase = phases(evaluation_sample(stream, settings), entity_labels, ENTITY_PHASES)[0]
            env["ALLOOP_ENTITIES__MIN_NEW_LABELS"] = str(max(sum(phase), 1))
    if settings.registry_dir:
        env["ALLOOP_REGISTRY_DIR"] = str(settings.registry_dir)
    print("starting the scorer and the API ...", file=out, flush=True)
    ensure_scorer(settings, env)
    key = api_key(settings)
    api = ensure_api(settings, env, key)
    if argilla:
        print("starting the labeler and the trainer ...", file=out, flush=True)
        ensure_worker(settings, "labeler", ["worker", "labeler"], env)
        # One round after each of the oracle's phases (unless configured otherwise).
        phase = phases(evaluation_sample(stream, settings), oracle_labels)[0]
        rounds = {"ALLOOP_TRAINER__MIN_NEW_LABELS": str(max(sum(phase), 1))}
        trainer_env = (
            {**rounds, **env} if "ALLOOP_TRAINER__MIN_NEW_LABELS" not in os.environ else env
        )
        ensure_worker(settings, "trainer", ["worker", "trainer"], trainer_env)

    since_ms = int(time.time() * 1000)
    producer = make_producer(servers, settings.kafka)
    unlabelled = [d.model_copy(update={"label": None}) for d in stream]
    try:
        publish(unlabelled, producer, topics.raw)
    finally:
        producer.close(timeout=10)
    result = collect_tagged(settings, servers, {d.id for d in stream}, since_ms, timeout_s=1800)
    show(result, stream, out)
    if argilla:
        plan = phases(evaluation_sample(stream, settings), oracle_labels)
        label_loop(settings, api.url or "", key, dataset, plan, out)
    if argilla and entities:
        plan = phases(evaluation_sample(stream, settings), entity_labels, ENTITY_PHASES)
        entity_loop(settings, api.url or "", key, plan, out)
    print(f"\nAPI          {api.url}  (docs: {api.url}/docs)", file=out)
    print(f"API key      {key}  (kept in {settings.state_dir / 'api_key'})", file=out)
    print(
        f"try          curl -s -H 'X-API-Key: {key}' -H 'Content-Type: application/json' "
        f'-d \'{{"text": "$AAPL soars after earnings beat"}}\' {api.url}/v1/classify',
        file=out,
    )
    print("stop         alloop stack down", file=out)
    print(f"\nopen         {page_address(api.url or '', key)}", file=out)


def page_address(api_url: str, key: str) -> str:
    """The model owners' page (``/ui``) if this API serves it, else the API's docs."""
    try:
        answer = httpx.get(
            f"{api_url}/ui", headers={"X-API-Key": key}, timeout=10, follow_redirects=True
        )
        if answer.status_code < 400:
            return f"{api_url}/ui"
    except httpx.HTTPError:
        pass
    return f"{api_url}/docs  (the API's docs: this version serves no /ui page)"


def show(result: StreamResult, stream: Sequence[Document], out: TextIO) -> None:
    gold = {d.id: d.label for d in stream}
    tagged = result.tagged
    rate = len(tagged) / result.seconds
    print(
        f"\nthroughput   {len(tagged)} of {len(stream)} tweets tagged in {result.seconds:.1f}s "
        f"({rate:.0f} docs/s, ingest to tagged output)",
        file=out,
    )
    counts = Counter(t.label or "unscored" for t in tagged.values())
    print("labels       " + ", ".join(f"{k} {v}" for k, v in counts.most_common()), file=out)
    scored = [t for t in tagged.values() if t.label is not None]
    if scored:
        agree = sum(t.label == gold.get(t.id) for t in scored) / len(scored)
        print(
            f"agreement    the seed model agrees with the human labels on {agree:.0%} of tweets "
            "(the active-learning loop exists to raise this with few labels)",
            file=out,
        )
    print("\nsample of tagged documents:", file=out)
    for doc in list(tagged.values())[:5]:
        text = doc.text if len(doc.text) <= 70 else doc.text[:67] + "..."
        score = f"{doc.score:.2f}" if doc.score is not None else "-"
        print(
            f"  {doc.label or 'unscored':8} {score:>5}  {doc.model_version or '-':6} {text}",
            file=out,
        )
