"""Fault injection on the real loop: a stream of real documents while scenarios break it.

A private loop (:class:`bench.live.Loop`: its own topics, Argilla datasets, home and
registry) runs the scorer, labeler, trainer and API as real processes on a real broker and a
real local Argilla; the scorer serves a SetFit version trained on a seed slice of the tweets
(head only, on the packaged MiniLM) and the oracle annotator answers every record in Argilla.
``documents`` tweets are streamed to the raw topic at ``rate`` documents per second; over
that time each :class:`Scenario` acts on the loop (:class:`KillSchedule`: SIGKILL a process
at random moments and restart it). Once the stream is in, the run waits for the loop to
settle and checks what a user relies on:

- every document on the tagged topic, and copies of a document byte-identical;
- exactly one Argilla record per candidate id (from the real Argilla);
- every answer given in Argilla in the label store, once per response id;
- every registered version (and the promoted one) loadable;
- no process exited on its own.

A scenario is a small object with ``plan`` (draw its moments), ``tick`` (act when due) and
``figures``; more faults (a broker restart, Argilla stopped) are more scenarios.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench import live
from loop.messages import Document

PROCESSES: dict[str, list[str]] = {
    "scorer": ["worker", "scorer"],
    "labeler": ["worker", "labeler", "--no-vectors"],
    "trainer": ["worker", "trainer"],
    "api": ["api"],
}
"""The loop's processes, by name, and their ``alloop`` arguments."""

LABELS = ["Bearish", "Bullish", "Neutral"]


@dataclass
class Run:
    """What scenarios act on: the running loop, the run's seeded random numbers, and how long
    the stream lasts (``horizon_s``, the time scenarios draw their moments in)."""

    loop: live.Loop
    rng: random.Random
    horizon_s: float
    started: float = field(default_factory=time.monotonic)
    events: list[str] = field(default_factory=list)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def note(self, text: str) -> None:
        line = f"[{self.elapsed:7.1f} s] {text}"
        self.events.append(line)
        print(line, file=sys.stderr, flush=True)


class Scenario(Protocol):
    """One kind of fault. ``plan`` draws its moments before the stream starts; ``tick`` is
    called about five times a second while it runs (and until ``done``) and acts on what is
    due; ``figures`` go into the report."""

    name: str

    def plan(self, run: Run) -> None: ...

    def tick(self, run: Run) -> None: ...

    def done(self) -> bool: ...

    def figures(self) -> dict[str, Any]: ...


@dataclass
class KillSchedule:
    """SIGKILL each of ``processes`` ``kills`` times at moments drawn uniformly over the
    stream, and start it again at once (a process killed while it starts up is killed
    again: that is a moment too)."""

    processes: Sequence[str] = tuple(PROCESSES)
    kills: int = 3
    name: str = "kill"
    due: list[tuple[float, str]] = field(default_factory=list)
    killed: Counter[str] = field(default_factory=Counter)

    def plan(self, run: Run) -> None:
        self.due = sorted(
            (run.rng.uniform(0, run.horizon_s), name)
            for name in self.processes
            for _ in range(self.kills)
        )

    def tick(self, run: Run) -> None:
        while self.due and self.due[0][0] <= run.elapsed:
            _, name = self.due.pop(0)
            code = run.loop.kill(name)
            self.killed[name] += 1
            run.loop.restart(name)
            run.note(f"SIGKILL {name} (exit {code}, kill {self.killed[name]}), restarted")

    def done(self) -> bool:
        return not self.due

    def figures(self) -> dict[str, Any]:
        return {"kills": {name: self.killed[name] for name in self.processes}}


class Tail:
    """Reads a topic from its start in a thread: every record's value, by document id."""

    def __init__(self, broker: str, topic: str) -> None:
        self.broker, self.topic = broker, topic
        self.values: dict[str, list[bytes]] = defaultdict(list)
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True, name=f"tail-{topic}")
        self._thread.start()

    def _read(self) -> None:
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(
            self.topic,
            bootstrap_servers=self.broker,
            group_id=f"chaos-tail-{uuid.uuid4().hex}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
        )
        try:
            while not self._stop.is_set():
                for batch in consumer.poll(timeout_ms=500).values():
                    with self.lock:
                        for record in batch:
                            self.values[_id_of(record)].append(bytes(record.value or b""))
        finally:
            consumer.close()

    def snapshot(self) -> dict[str, list[bytes]]:
        with self.lock:
            return {key: list(values) for key, values in self.values.items()}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _id_of(record: Any) -> str:
    """The document id of a message: its ``id`` field, else its key (a dead letter's value is
    the bytes it could not read)."""
    try:
        value = json.loads(record.value)
        if isinstance(value, dict) and isinstance(value.get("id"), str):
            return value["id"]
    except (ValueError, TypeError):
        pass
    return (record.key or b"").decode("utf-8", "replace")


class Answering:
    """The oracle annotator, answering what is pending in Argilla in a thread until closed."""

    def __init__(self, loop: live.Loop, gold: Sequence[Document]) -> None:
        from connectors.argilla.oracle import Gold, Oracle

        argilla = loop.stack.argilla
        self.oracle = Oracle(
            argilla.url, argilla.credentials.annotator_api_key, Gold(gold), prefix=loop.prefix
        )
        self.submitted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._answer, daemon=True, name="oracle")
        self._thread.start()

    def _answer(self) -> None:
        while not self._stop.is_set():
            try:
                self.submitted += self.oracle.run().submitted
            except Exception as exc:  # Argilla busy or restarting: answer on the next pass
                print(f"oracle: {type(exc).__name__}: {exc}", file=sys.stderr)
            self._stop.wait(1.0)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=120)
        self.oracle.close()


@dataclass
class Findings:
    """What the checks found; ``failures`` is empty when every invariant holds."""

    figures: dict[str, Any]
    failures: list[str]
    lost: bool
    """Something expected is not there (yet): the loop may still be catching up."""


def check(
    loop: live.Loop,
    streamed: Sequence[str],
    tagged: Tail,
    candidates: Tail,
    dead: dict[str, Tail],
    versions: bool = True,
) -> Findings:
    """Every invariant, on what the topics, Argilla, the label store and the registry hold now
    (the registry's versions are loaded only with ``versions``)."""
    from connectors.argilla.answers import poll
    from connectors.argilla.setup import owner_client
    from loop.labels import LabelStore

    argilla = loop.stack.argilla
    records: Counter[str] = Counter()
    with owner_client(argilla.url, argilla.credentials.owner_api_key) as http:
        for dataset in http.get("/api/v1/me/datasets").raise_for_status().json()["items"]:
            if str(dataset["name"]).startswith(f"{loop.prefix}-"):
                records.update(_external_ids(http, str(dataset["id"])))
        answers = poll(http, loop.prefix)
    stored = list(LabelStore(loop.home / "labels" / "labels.db").answers())
    rows = Counter(a.response_id for a in stored)  # the store's rows, by response id
    found = [
        tagged_findings(streamed, tagged.snapshot(), set(dead["raw"].snapshot())),
        record_findings(set(candidates.snapshot()) - set(dead["candidates"].snapshot()), records),
        label_findings(
            {a.response_id for a in answers},
            set(rows),
            rows,
        ),
        *([version_findings(loop.home / "registry")] if versions else []),
    ]
    figures = {k: v for f in found for k, v in f.figures.items()}
    figures["dead_lettered"] = {name: len(tail.snapshot()) for name, tail in dead.items()}
    return Findings(figures, [x for f in found for x in f.failures], any(f.lost for f in found))


def tagged_findings(
    streamed: Sequence[str], copies: dict[str, list[bytes]], dead: set[str]
) -> Findings:
    """Every streamed document tagged (or dead-lettered), its copies byte-identical."""
    missing = [i for i in streamed if i not in copies and i not in dead]
    unequal = [i for i, values in copies.items() if len(set(values)) > 1]
    failures = _failures((missing, "document(s) not on the tagged topic"))
    if unequal:
        values = copies[unequal[0]]
        failures.append(
            f"{len(unequal)} document(s) tagged twice with different bytes, e.g. "
            f"{unequal[0]}: {values[0][:300]!r} against {values[-1][:300]!r}"
        )
    figures = {
        "tagged": sum(1 for i in streamed if i in copies),
        "tagged_copies": sum(len(v) for v in copies.values()) - len(copies),
        "lost_documents": len(missing),
        "unequal_copies": len(unequal),
    }
    return Findings(figures, failures, bool(missing))


def record_findings(wanted: set[str], records: Counter[str]) -> Findings:
    """Exactly one Argilla record per candidate id (``records``: records per external id)."""
    no_record = sorted(wanted - set(records))
    twice = sorted(i for i, n in records.items() if n > 1)
    strays = sorted(set(records) - wanted)
    failures = _failures(
        (no_record, "candidate(s) without an Argilla record"),
        (twice, "candidate(s) with several Argilla records"),
        (strays, "Argilla record(s) of no candidate"),
    )
    figures = {
        "candidates": len(wanted),
        "argilla_records": sum(records.values()),
        "lost_candidates": len(no_record),
        "duplicate_records": sum(records[i] - 1 for i in twice),
    }
    return Findings(figures, failures, bool(no_record))


def label_findings(given: set[str], stored: set[str], lines: Counter[str]) -> Findings:
    """Every answer given in Argilla in the label store, once (``lines``: the store's rows per
    response id)."""
    unstored = sorted(given - stored)
    repeated = sorted(r for r in given if lines[r] > 1)
    failures = _failures(
        (unstored, "answer(s) given in Argilla not in the label store"),
        (repeated, "response id(s) stored more than once"),
    )
    figures = {
        "answers": len(given),
        "lost_labels": len(unstored),
        "duplicate_labels": sum(lines[r] - 1 for r in repeated),
    }
    return Findings(figures, failures, bool(unstored))


def _failures(*found: tuple[Sequence[str], str]) -> list[str]:
    """One line per check that found something: how many, what, and the first few."""
    return [f"{len(items)} {what}: {', '.join(items[:3])}" for items, what in found if items]


def version_findings(folder: Path) -> Findings:
    """Every registered version loads (the promoted one among them)."""
    from loop.classification.factories import load_version
    from loop.registry import ModelRegistry

    registry = ModelRegistry(folder)
    versions = registry.versions()
    unloadable = []
    for version in versions:
        try:
            load_version(registry, version)
        except Exception as exc:  # what a user would see: this version cannot serve
            unloadable.append(f"{version} ({type(exc).__name__}: {exc})")
    promoted = registry.promoted()
    if promoted is not None and promoted not in versions:
        unloadable.append(f"{promoted} (promoted, not registered)")
    figures = {
        "versions": len(versions),
        "promoted": promoted,
        "unloadable_versions": len(unloadable),
    }
    failures = [f"version(s) that cannot be loaded: {', '.join(unloadable)}"] if unloadable else []
    return Findings(figures, failures, False)


def _external_ids(http: Any, dataset_id: str, page: int = 500) -> Iterator[str]:
    offset = 0
    while True:
        found = http.post(
            f"/api/v1/datasets/{dataset_id}/records/search",
            params={"offset": offset, "limit": page},
            json={},
        ).raise_for_status()
        records = [item["record"] for item in found.json()["items"]]
        yield from (str(r.get("external_id")) for r in records)
        offset += len(records)
        if len(records) < page:
            return


def _paced(docs: Sequence[Document], rate: float) -> Iterator[Document]:
    started = time.monotonic()
    for i, doc in enumerate(docs):
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield doc.model_copy(update={"label": None})


def _write(path: Path, docs: Sequence[Document]) -> Path:
    path.write_text(
        "".join(json.dumps({"id": d.id, "text": d.text, "label": d.label}) + "\n" for d in docs)
    )
    return path


def split(
    documents: int, seed: int, per_label: int = 20, test_size: int = 90
) -> tuple[list[Document], list[Document], list[Document]]:
    """(the seed file, the evaluation file, the stream) drawn from the tweets by ``seed``."""
    from loop.datasets import DEFAULT_DATASET, read_tweets, take_per_label

    tweets = read_tweets(DEFAULT_DATASET)
    random.Random(seed).shuffle(tweets)
    seed_docs = take_per_label(tweets, per_label)
    taken = {d.id for d in seed_docs}
    rest = [d for d in tweets if d.id not in taken]
    test, stream = rest[:test_size], rest[test_size:]
    if documents > len(stream):
        raise ValueError(f"--documents {documents}: the tweets hold {len(stream)} to stream")
    return seed_docs, test, stream[:documents]


def loop_settings(model_kind: str, round_size: int, per_round: int) -> dict[str, str]:
    return {
        "ALLOOP_ARGILLA__LABELS": ",".join(LABELS),
        "ALLOOP_ARGILLA__BUDGET": "100000",  # nothing turned away: every candidate gets a record
        "ALLOOP_ARGILLA__POLL_INTERVAL_S": "5",
        "ALLOOP_ARGILLA__POLL_GRACE_S": "5",
        "ALLOOP_SCORER__ROUND_SIZE": str(round_size),
        "ALLOOP_SCORER__CANDIDATES_PER_ROUND": str(per_round),
        "ALLOOP_SCORER__EVALUATION_FRACTION": "0",
        "ALLOOP_TRAINER__MIN_NEW_LABELS": str(4 * per_round),
        "ALLOOP_TRAINER__MAX_WAIT_S": "60",
        "ALLOOP_TRAINER__CHECK_INTERVAL_S": "10",
        "ALLOOP_TRAINER__MIN_TEST_SIZE": "30",
        "ALLOOP_TRAINER__FULL_FINETUNE_EVERY": "0",
        "ALLOOP_TRAINER__MODEL_KIND": model_kind,
    }


def run(
    documents: int = 10_000,
    *,
    kills: int = 3,
    seed: int = 0,
    rate: float = 15.0,
    model_kind: str = "setfit",
    round_size: int = 250,
    per_round: int = 10,
    settle_timeout_s: float = 900.0,
    scenarios: Sequence[Scenario] | None = None,
    stack: live.Stack | None = None,
) -> dict[str, Any]:
    """One chaos run; the figures, with ``failures`` (empty when every invariant held)."""
    from kafka import KafkaProducer

    from connectors.ingest import publish
    from connectors.kafka import ensure_topics

    seed_docs, test, stream = split(documents, seed)
    chosen = list(scenarios) if scenarios is not None else [KillSchedule(kills=kills)]
    started = time.monotonic()
    with nullcontext(stack) if stack is not None else live.stack("alloop-chaos-") as running:
        loop = live.Loop.create(running, "chaos", loop_settings(model_kind, round_size, per_round))
        trained = subprocess.run(
            [
                sys.executable,
                "-m",
                "cli",
                "train",
                "--freeze-body",
                "--data",
                str(_write(loop.home / "seed.jsonl", seed_docs)),
                "--test",
                str(_write(loop.home / "test.jsonl", test)),
            ],
            env={**os.environ, **loop.env},
            capture_output=True,
            text=True,
            cwd=live.ROOT,
        )
        if trained.returncode != 0:
            raise RuntimeError(f"alloop train failed: {trained.stderr[-2000:]}")
        topics = {name: loop.topic(name) for name in ("raw", "tagged", "candidates")}
        ensure_topics(running.broker, [topics["raw"], topics["candidates"]], 3)
        tails = {name: Tail(running.broker, topic) for name, topic in topics.items()}
        dead = {
            name: Tail(running.broker, f"{topic}.dlq")
            for name, topic in topics.items()
            if name != "tagged"
        }
        for name, argv in PROCESSES.items():
            loop.start(name, argv)
        answering: Answering | None = None
        producer = KafkaProducer(bootstrap_servers=running.broker, acks="all")
        try:
            loop.wait_assigned("scorer", "labeler", "trainer")
            answering = Answering(loop, [*seed_docs, *test, *stream])
            state = Run(loop, random.Random(seed), horizon_s=documents / rate)
            for scenario in chosen:
                scenario.plan(state)
            state.note(f"streaming {documents} documents at {rate:g}/s to {topics['raw']}")
            sender = threading.Thread(
                target=publish,
                args=(_paced(stream, rate), producer, topics["raw"]),
                kwargs={"progress": False},
                daemon=True,
            )
            sender.start()
            crashes: Counter[str] = Counter()
            while sender.is_alive() or not all(s.done() for s in chosen):
                for scenario in chosen:
                    scenario.tick(state)
                _revive(state, crashes)
                time.sleep(0.2)
            state.note("stream in; waiting for the loop to settle")
            ids = [d.id for d in stream]
            deadline = time.monotonic() + settle_timeout_s
            found = check(loop, ids, tails["tagged"], tails["candidates"], dead, versions=False)
            while found.lost and time.monotonic() < deadline:
                time.sleep(5)
                _revive(state, crashes)
                found = check(loop, ids, tails["tagged"], tails["candidates"], dead, False)
            time.sleep(10)  # late copies would show now
            found = check(loop, ids, tails["tagged"], tails["candidates"], dead)
            _revive(state, crashes)
            failures = list(found.failures)
            if crashes:
                failures.append(f"processes exited on their own: {dict(crashes)}")
            figures = {
                "documents": documents,
                "seed": seed,
                "rate": rate,
                "model_kind": model_kind,
                **{k: v for s in chosen for k, v in s.figures().items()},
                "crashes": dict(crashes),
                **found.figures,
                "answers_given": answering.submitted,
                "wall_s": round(time.monotonic() - started, 1),
                "home": str(loop.home),
                "failures": failures,
            }
        finally:
            if answering is not None:
                answering.close()
            producer.close(timeout=10)
            for tail in [*tails.values(), *dead.values()]:
                tail.close()
            loop.stop()
    return figures


def _revive(run: Run, crashes: Counter[str]) -> None:
    """Start again any process that exited on its own (a finding: it is counted)."""
    for name, (_, process) in list(run.loop.running.items()):
        code = process.poll()
        if code is not None:
            crashes[name] += 1
            tail = run.loop.log(name).read_text(errors="replace").splitlines()[-5:]
            run.note(f"the {name} exited on its own (code {code}): {' | '.join(tail)}")
            run.loop.restart(name)


def report(figures: dict[str, Any]) -> str:
    kills = figures.get("kills", {})
    lines = [
        f"documents streamed      {figures['documents']}",
        f"tagged                  {figures['tagged']} ({figures['tagged_copies']} replayed copies, "
        f"{figures['unequal_copies']} unequal)",
        f"kills                   {', '.join(f'{k} {v}' for k, v in kills.items())}",
        f"crashes                 {sum(figures['crashes'].values())}",
        f"candidates              {figures['candidates']} -> {figures['argilla_records']} Argilla "
        f"records ({figures['duplicate_records']} duplicates)",
        f"answers                 {figures['answers']} in Argilla, {figures['lost_labels']} not "
        f"stored, {figures['duplicate_labels']} stored twice",
        f"versions                {figures['versions']} loadable "
        f"{figures['versions'] - figures['unloadable_versions']}, promoted {figures['promoted']}",
        f"losses                  {figures['lost_documents'] + figures['lost_candidates'] + figures['lost_labels']}",
        f"duplicates              {figures['duplicate_records'] + figures['duplicate_labels'] + figures['unequal_copies']}",
        f"wall time               {figures['wall_s']} s",
    ]
    lines += [f"FAILED: {f}" for f in figures["failures"]]
    return "\n".join(lines)
