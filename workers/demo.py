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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TextIO

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
    state = stack.up(
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
        from loop.labels import LabelStore
        from loop.models.base import ClassifierConfig
        from loop.models.setfit_classifier import SetFitFactory
        from loop.training import seed_labels, train_and_publish

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


PHASES = 3
"""The oracle's answers come in this many phases, a training round after each: with the
seed model, that makes the points of an improvement curve."""
ENTITY_PHASES = 2
"""The same for the entity task (its rounds train a tagger: minutes each)."""


def evaluation_sample(stream: Sequence[Document], settings: Settings) -> int:
    """How many streamed documents the scorer draws for the evaluation sample."""
    from loop.split import in_evaluation_sample

    fraction = settings.scorer.evaluation_fraction
    return sum(in_evaluation_sample(d.id, fraction) for d in stream)


def phases(evaluation: int, selected: int, count: int = PHASES) -> list[tuple[int, int]]:
    """(evaluation-sample answers, other answers) of each of ``count`` phases: the
    evaluation sample spread over the phases, and the same number of answers in every phase,
    so that the trainer's count of new labels starts one round per phase."""
    per_phase = -(-evaluation // count) + -(-selected // count)
    plan, left = [], evaluation
    for _ in range(count):
        drawn = min(-(-evaluation // count), left)
        left -= drawn
        plan.append((drawn, per_phase - drawn))
    return plan


def answer(bot: Any, wanted: int, deadline_s: float = 300) -> int:
    """Let the oracle give ``wanted`` answers (as they become pending); how many it gave."""
    total, deadline = 0, time.monotonic() + deadline_s
    while total < wanted and time.monotonic() < deadline:
        total += bot.run(wanted - total).submitted
        if total < wanted:
            time.sleep(2)
    return total


def wait_for_version(registry: ModelRegistry, before: str | None, timeout_s: float = 600) -> bool:
    deadline = time.monotonic() + timeout_s
    while registry.latest() == before and time.monotonic() < deadline:
        time.sleep(2)
    return registry.latest() != before


def describe_round(registry: ModelRegistry, version: str, out: TextIO) -> None:
    """A version's card, its evaluation (on how many test documents, from where) and what the
    gate decided against what served."""
    card = registry.card(version)
    metrics = card.metrics or {}
    evaluation = metrics.get("evaluation") or {}
    gate = metrics.get("gate") or {}
    state = "promoted" if registry.promoted() == version else "not promoted"
    print(
        f"new version  {version}: trained on {card.counts.get('train')} labels, {state}", file=out
    )
    if evaluation:
        origins = ", ".join(f"{n} {k}" for k, n in (evaluation.get("test_origins") or {}).items())
        print(
            f"  test set   macro-F1 {evaluation['macro']['f1']:.3f} on {evaluation['test_size']} "
            f"test documents ({origins or 'none yet'})",
            file=out,
        )
    for reason in gate.get("reasons", []):
        print(f"  gate       {reason}", file=out)


def show_curve(registry: ModelRegistry, api_url: str, task: str, out: TextIO) -> None:
    from loop.curves import curves

    (macro,) = curves(registry, ["macro_f1"])
    if not macro.points:
        return
    size = macro.points[-1].test_size
    print(f"curve        macro-F1 of every version on the same {size} test documents:", file=out)
    for p in macro.points:
        mark = " (promoted)" if p.promoted else ""
        print(f"  {p.version:8} {p.labels:5} labels  {p.value:.3f}{mark}", file=out)
    print(f"  picture    {api_url}/v1/curves?format=png&task={task}", file=out)


def in_phases(
    oracle: Callable[..., Any],
    settings: Settings,
    task: str,
    plan: Sequence[tuple[int, int]],
    registry: ModelRegistry,
    verb: str,
    out: TextIO,
) -> bool:
    """Let the oracle (``oracle(**options)`` makes one) answer ``task``'s records phase by
    phase, the evaluation sample first, and show the version the trainer makes after each;
    False when a round did not come."""
    bots = {
        reason: oracle(prefix=settings.argilla.dataset_prefix, rate=10, task=task, reason=reason)
        for reason in ("evaluation", None)
    }
    try:
        for k, (evaluation, other) in enumerate(plan, start=1):
            before = registry.latest()
            print(
                f"phase {k}/{len(plan)}    the oracle {verb} {evaluation} evaluation-sample and "
                f"{other} selected records; waiting for the trainer ...",
                file=out,
                flush=True,
            )
            given = answer(bots["evaluation"], evaluation)
            answer(bots[None], evaluation + other - given)
            if not wait_for_version(registry, before, timeout_s=900):
                print(f"no new {task} version yet: see the trainer's log", file=out)
                return False
            describe_round(registry, str(registry.latest()), out)
    finally:
        for bot in bots.values():
            bot.close()
    return True


def label_loop(
    settings: Settings,
    api_url: str,
    key: str,
    dataset: Path,
    plan: Sequence[tuple[int, int]],
    out: TextIO,
) -> None:
    """Show the queue in Argilla; let the oracle answer in phases (part of the evaluation
    sample, then other records), a training round after each; show each round and the
    improvement curve."""
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
    if not any(sum(p) for p in plan) or credentials is None:
        return
    drawn = sum(e for e, _ in plan)
    print(
        f"test set     {drawn} tweets drawn at random from the stream (the evaluation sample, "
        f"{settings.scorer.evaluation_fraction:.0%}) wait in Argilla with reason 'evaluation'; "
        "once answered they are the frozen test set",
        file=out,
    )
    time.sleep(5)  # let the labeler place the first candidates
    task = settings.trainer.task
    oracle = partial(Oracle, url, credentials.annotator_api_key, Gold(read_tweets(dataset)))
    if not in_phases(oracle, settings, task, plan, registry, "answers", out):
        return
    show_curve(registry, api_url, task, out)
    headers = {"X-API-Key": key}
    try:
        seed = registry.versions()[0]
        latest = registry.latest()
        delta = httpx.get(
            f"{api_url}/v1/evaluations/deltas",
            headers=headers,
            params={"base": seed, "head": latest},
            timeout=30,
        ).json()
        m = delta["macro_f1"]
        print(
            f"delta        {delta['base']} -> {delta['head']}: macro-F1 {m['delta']:+.3f} "
            f"[{m['ci_low']:+.3f}, {m['ci_high']:+.3f}] on {delta['common_test_size']} test "
            f"documents, {len(delta['fixed'])} fixed, {len(delta['broken'])} broken",
            file=out,
        )
    except (httpx.HTTPError, KeyError, ValueError, IndexError) as exc:
        print(f"(could not read the delta: {exc})", file=out)


def entity_loop(
    settings: Settings, api_url: str, key: str, plan: Sequence[tuple[int, int]], out: TextIO
) -> None:
    """The entity queue: what reached it and why; the oracle accepts the suggested spans in
    phases (part of the evaluation sample, then other records), an entity round after each;
    each version is judged against what serves (the patterns, before the first promotion)."""
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
    probe_entities(api_url, headers, out)
    if not any(sum(p) for p in plan) or credentials is None:
        return
    registry = ModelRegistry(settings.entity_registry_path)
    oracle = partial(Oracle, url, credentials.annotator_api_key, Gold([]), accept_suggestions=True)
    if not in_phases(oracle, settings, task, plan, registry, "accepts the suggested spans of", out):
        return
    show_curve(registry, api_url, task, out)
    probe_entities(api_url, headers, out)


PROBE = "USDJPY rallies as $AAPL soars after earnings beat; ETH flat"


def probe_entities(api_url: str, headers: dict[str, str], out: TextIO) -> None:
    """What the served entities of one sentence are, with their offsets."""
    try:
        tagged = httpx.post(
            f"{api_url}/v1/entities", headers=headers, json={"text": PROBE}, timeout=30
        ).json()
        found = ", ".join(
            f"{e['text']} {e['label']} [{e['start']}:{e['end']}]"
            for e in tagged.get("results", [{}])[0].get("entities", [])
        )
        print(f"tagging      {PROBE!r}: {found} ({tagged.get('entity_version')})", file=out)
    except (httpx.HTTPError, ValueError, KeyError, IndexError) as exc:
        print(f"(could not ask {api_url}/v1/entities: {exc})", file=out)
