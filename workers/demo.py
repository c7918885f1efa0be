"""``alloop demo``: the whole backbone on the local stack with real financial tweets.

Starts the broker, trains a seed model on a few labelled tweets per class, starts a scorer and
the API, streams the rest of the tweets through, and shows what came out.
"""

from __future__ import annotations

import logging
import os
import secrets
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

from loop.messages import Document, TaggedDocument, decode
from loop.readers import Columns, Rejected, read_documents
from loop.registry import ModelRegistry
from loop.settings import Settings
from workers import stack
from workers.bus import ensure_topics, make_consumer, make_producer
from workers.ingest import publish

logger = logging.getLogger(__name__)

TWEET_LABELS = {"0": "Bearish", "1": "Bullish", "2": "Neutral"}
DEFAULT_DATASET = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "datasets"
    / ("twitter_financial_news_sentiment")
)


def take_per_label(documents: Sequence[Document], per_label: int) -> list[Document]:
    """The first ``per_label`` documents of each label, in input order (a document with a
    label set is taken while one of its labels is short of examples)."""
    taken: list[Document] = []
    counts: Counter[str] = Counter()
    for doc in documents:
        names = doc.labels if doc.labels is not None else [doc.label] if doc.label else []
        if any(counts[name] < per_label for name in names):
            counts.update(names)
            taken.append(doc)
    return taken


def read_tweets(dataset: Path) -> list[Document]:
    columns = Columns(label_names=TWEET_LABELS)
    docs: dict[str, Document] = {}
    for name in ("sent_train.csv", "sent_valid.csv"):
        for item in read_documents(dataset / name, columns):
            if not isinstance(item, Rejected):
                docs.setdefault(item.id, item)
    return list(docs.values())


def python_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "workers.cli", *args]


def ensure_scorer(settings: Settings, env: dict[str, str]) -> stack.Service:
    state = stack.StackState.load(settings.state_dir)
    current = state.services.get("scorer")
    if current is not None and current.alive():
        return current
    log = settings.state_dir / "logs" / "scorer.log"
    log.unlink(missing_ok=True)
    command = python_command("worker", "scorer", "--worker-id", "demo-scorer")
    process = stack.spawn("scorer", command, log, env)
    stack.wait_for_log(process, log, "assigned partitions", timeout_s=120)
    service = stack.Service(name="scorer", pid=process.pid, command=command, log=str(log))
    stack.register(settings.state_dir, service)
    return service


def ensure_worker(
    settings: Settings, name: str, argv: list[str], env: dict[str, str]
) -> stack.Service:
    """Start ``alloop worker ...`` as a stack service (stopped by ``alloop stack down``)."""
    state = stack.StackState.load(settings.state_dir)
    current = state.services.get(name)
    if current is not None and current.alive():
        return current
    log = settings.state_dir / "logs" / f"{name}.log"
    log.unlink(missing_ok=True)
    command = python_command(*argv)
    process = stack.spawn(name, command, log, env)
    stack.wait_for_log(process, log, "assigned partitions", timeout_s=180)
    service = stack.Service(name=name, pid=process.pid, command=command, log=str(log))
    stack.register(settings.state_dir, service)
    return service


def api_key(settings: Settings) -> str:
    """The configured key, or one generated for the local stack and kept with 0600."""
    if settings.api.keys:
        return settings.api.keys[0].get_secret_value()
    file = settings.state_dir / "api_key"
    if not file.is_file():
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(24))
    return file.read_text().strip()


def ensure_api(settings: Settings, env: dict[str, str], key: str) -> stack.Service:
    state = stack.StackState.load(settings.state_dir)
    current = state.services.get("api")
    if current is not None and current.alive():
        return current
    port = settings.api.port
    try:
        import socket

        with socket.socket() as probe:
            probe.bind((settings.api.host, port))
    except OSError:
        port = stack.free_port(settings.api.host)
    url = f"http://{settings.api.host}:{port}"
    log = settings.state_dir / "logs" / "api.log"
    log.unlink(missing_ok=True)
    command = python_command("api", "--port", str(port))
    process = stack.spawn("api", command, log, {**env, "ALLOOP_API__KEYS": key})
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            raise stack.StackError(f"the API exited with {process.returncode}; see {log}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise stack.StackError(f"the API did not answer on {url}/health; see {log}")
        time.sleep(0.5)
    service = stack.Service(name="api", pid=process.pid, command=command, log=str(log), url=url)
    stack.register(settings.state_dir, service)
    return service


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
        raise stack.StackError(f"the demo dataset is not at {dataset} (use --dataset)")
    local_argilla = argilla and not settings.argilla.url
    starter = None
    if local_argilla:
        from workers.argilla_local import starter as argilla_starter

        starter = argilla_starter(settings)
    state = stack.up(settings.state_dir, starter, broker=not settings.kafka.bootstrap_servers)
    servers = settings.kafka.bootstrap_servers or state.services["broker"].address or ""
    print(f"broker       {servers}", file=out)

    docs = read_tweets(dataset)
    seed = take_per_label(docs, seed_per_label)
    seed_ids = {d.id for d in seed}
    stream = [d for d in docs if d.id not in seed_ids][:limit]
    registry = ModelRegistry(settings.registry_path)
    if retrain or registry.promoted() is None:
        from loop.labels import LabelStore
        from loop.models.base import ClassifierConfig
        from loop.models.setfit_classifier import SetFitFactory
        from loop.split import split
        from loop.training import seed_labels, train_and_publish

        # The seed labels go into the label store too, so the trainer's rounds build on them;
        # the share the frozen split reserves for testing is held out of the seed model.
        seed_labels(seed, LabelStore(settings.labels_path), settings.trainer.task)
        held = len(split(seed, settings.trainer.test_fraction)[1])
        print(
            f"training a seed model on {len(seed) - held} labelled tweets "
            f"({held} more wait in the label store's test set) ...",
            file=out,
            flush=True,
        )
        started = time.monotonic()
        config = ClassifierConfig(num_iterations=iterations, head_c=settings.trainer.head_c)
        card = train_and_publish(
            seed,
            SetFitFactory(),
            registry,
            config,
            promote=True,
            notes="demo seed model",
            test_fraction=settings.trainer.test_fraction,
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
            env["ALLOOP_ENTITIES__MIN_NEW_LABELS"] = str(max(entity_labels // 2, 1))
    if settings.registry_dir:
        env["ALLOOP_REGISTRY_DIR"] = str(settings.registry_dir)
    print("starting the scorer and the API ...", file=out, flush=True)
    ensure_scorer(settings, env)
    key = api_key(settings)
    api = ensure_api(settings, env, key)
    if argilla:
        print("starting the labeler and the trainer ...", file=out, flush=True)
        ensure_worker(settings, "labeler", ["worker", "labeler"], env)
        # One round once the oracle's answers are in (unless configured otherwise).
        rounds = {"ALLOOP_TRAINER__MIN_NEW_LABELS": str(max(oracle_labels, 20))}
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
        label_loop(settings, api.url or "", key, dataset, oracle_labels, out)
    if argilla and entities:
        entity_loop(settings, api.url or "", key, entity_labels, out)
    print(f"\nAPI          {api.url}  (docs: {api.url}/docs)", file=out)
    print(f"API key      {key}  (kept in {settings.state_dir / 'api_key'})", file=out)
    print(
        f"try          curl -s -H 'X-API-Key: {key}' -H 'Content-Type: application/json' "
        f'-d \'{{"text": "$AAPL soars after earnings beat"}}\' {api.url}/v1/classify',
        file=out,
    )
    print("stop         alloop stack down", file=out)


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


def label_loop(
    settings: Settings, api_url: str, key: str, dataset: Path, answers: int, out: TextIO
) -> None:
    """Show the queue in Argilla; let the oracle answer ``answers`` records; show the round."""
    from workers.annotate import Gold, Oracle
    from workers.labeler import connect

    url, _ = connect(settings)
    credentials = (
        stack.ArgillaCredentials.load(settings.state_dir) if not settings.argilla.url else None
    )
    print(
        f"\nArgilla      {url}  (dataset {settings.argilla.dataset_prefix}-classification)",
        file=out,
    )
    if credentials is not None:
        print(
            f"  sign in as {credentials.annotator} / {credentials.annotator_password} to label the queue",
            file=out,
        )
    registry = ModelRegistry(settings.registry_path)
    before = registry.latest()
    if answers <= 0 or credentials is None:
        return
    time.sleep(5)  # let the labeler place the first candidates
    print(
        f"the oracle annotator answers {answers} records with the gold labels ...",
        file=out,
        flush=True,
    )
    gold = Gold(read_tweets(dataset))
    bot = Oracle(
        url, credentials.annotator_api_key, gold, prefix=settings.argilla.dataset_prefix, rate=5
    )
    total = 0
    deadline = time.monotonic() + 300
    try:
        while total < answers and time.monotonic() < deadline:
            total += bot.run(answers - total).submitted
            if total < answers:
                time.sleep(2)
    finally:
        bot.close()
    print(
        f"answered     {total} records; waiting for the trainer's round ...", file=out, flush=True
    )
    deadline = time.monotonic() + 600
    while registry.latest() == before and time.monotonic() < deadline:
        time.sleep(2)
    if registry.latest() == before:
        print("no new version yet: see the trainer's log (alloop stack status)", file=out)
        return
    headers = {"X-API-Key": key}
    version = registry.latest()
    card = registry.card(str(version))
    print(
        f"new version  {version}: trained on {card.counts.get('train')} labels, "
        f"{'promoted' if registry.promoted() == version else 'not promoted (see its gate)'}",
        file=out,
    )
    try:
        evaluation = httpx.get(
            f"{api_url}/v1/evaluations/{version}", headers=headers, timeout=10
        ).json()
        print(
            f"evaluation   macro-F1 {evaluation['macro']['f1']:.3f} on {evaluation['test_size']} test "
            f"documents ({api_url}/v1/evaluations/{version})",
            file=out,
        )
        delta = httpx.get(f"{api_url}/v1/evaluations/deltas", headers=headers, timeout=30).json()
        if "macro_f1" in delta:
            m = delta["macro_f1"]
            print(
                f"delta        {delta['base']} -> {delta['head']}: macro-F1 {m['delta']:+.3f} "
                f"[{m['ci_low']:+.3f}, {m['ci_high']:+.3f}], {len(delta['fixed'])} fixed, "
                f"{len(delta['broken'])} broken",
                file=out,
            )
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        print(f"(could not read the evaluation: {exc})", file=out)


def entity_loop(settings: Settings, api_url: str, key: str, answers: int, out: TextIO) -> None:
    """The entity queue: what reached it and why; the oracle accepts the suggested spans of
    ``answers`` records in two halves, so that two versions and a delta between them appear."""
    from workers.annotate import Gold, Oracle
    from workers.labeler import connect

    url, _ = connect(settings)
    credentials = (
        stack.ArgillaCredentials.load(settings.state_dir) if not settings.argilla.url else None
    )
    task = settings.entities.task
    print(
        f"\nentities     dataset {settings.argilla.dataset_prefix}-{task} in Argilla: spans "
        f"of {', '.join(settings.entities.types)}, pre-annotated by the patterns",
        file=out,
    )
    headers = {"X-API-Key": key}
    probe = "AUDJPY breaks out while $TSLA slides and Bitcoin holds"
    try:
        tagged = httpx.post(
            f"{api_url}/v1/entities", headers=headers, json={"text": probe}, timeout=30
        ).json()
        found = ", ".join(
            f"{e['text']} {e['label']}" for e in tagged.get("results", [{}])[0].get("entities", [])
        )
        print(f"tagging      {probe!r}: {found} ({tagged.get('entity_version')})", file=out)
    except (httpx.HTTPError, ValueError, KeyError, IndexError) as exc:
        print(f"(could not ask {api_url}/v1/entities: {exc})", file=out)
    if answers <= 0 or credentials is None:
        return
    registry = ModelRegistry(settings.entity_registry_path)
    bot = Oracle(
        url,
        credentials.annotator_api_key,
        Gold([]),
        prefix=settings.argilla.dataset_prefix,
        rate=5,
        accept_suggestions=True,
        task=task,
    )
    try:
        for half in (answers - answers // 2, answers // 2):
            before = registry.latest()
            total, deadline = 0, time.monotonic() + 300
            while total < half and time.monotonic() < deadline:
                total += bot.run(half - total).submitted
                if total < half:
                    time.sleep(2)
            print(
                f"answered     {total} entity records (accepting the suggested spans); "
                "waiting for the trainer ...",
                file=out,
                flush=True,
            )
            deadline = time.monotonic() + 600
            while registry.latest() == before and time.monotonic() < deadline:
                time.sleep(2)
            version = registry.latest()
            if version == before:
                print("no new entity version yet: see the trainer's log", file=out)
                return
            card = registry.card(str(version))
            print(
                f"entity model {version}: trained on {card.counts.get('train')} documents, "
                f"{'promoted' if registry.promoted() == version else 'not promoted'}",
                file=out,
            )
    finally:
        bot.close()
    try:
        delta = httpx.get(
            f"{api_url}/v1/evaluations/deltas",
            headers=headers,
            params={"task": task},
            timeout=30,
        ).json()
        m = delta["micro_f1"]
        if not delta["common_test_size"]:
            print(
                f"delta        {delta['base']} -> {delta['head']}: no test document scored by "
                "both yet (the test set grows with the labels)",
                file=out,
            )
            return
        print(
            f"delta        {delta['base']} -> {delta['head']}: span micro-F1 {m['delta']:+.3f} "
            f"[{m['ci_low']:+.3f}, {m['ci_high']:+.3f}] ({api_url}/v1/evaluations/deltas"
            f"?task={task})",
            file=out,
        )
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        print(f"(could not read the entity delta: {exc})", file=out)
