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

The faults are scenarios (:mod:`bench.chaos_scenarios`): SIGKILLs of each process, broker
restarts, Argilla frozen with its Redis killed, and scorers killed between their acknowledged
outputs and their commit, so that batches are replayed (:func:`scenarios`).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from bench import live
from bench.chaos_checks import check
from bench.chaos_scenarios import (
    PROCESSES,
    ArgillaStops,
    BrokerRestarts,
    KillSchedule,
    ReplayKill,
    Run,
    Scenario,
)
from bench.topic_tail import Tail
from loop.messages import Document

LABELS = ["Bearish", "Bullish", "Neutral"]


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


def scenarios(
    kills: int = 3,
    *,
    broker_restarts: int = 0,
    broker_down_s: float = 10.0,
    argilla_stops: int = 0,
    argilla_stop_s: float = 60.0,
    replays: int = 0,
) -> list[Scenario]:
    """The scenarios of one run: each process killed ``kills`` times, the broker restarted
    ``broker_restarts`` times (down ``broker_down_s``), Argilla frozen ``argilla_stops`` times
    for ``argilla_stop_s`` (then its Redis killed), ``replays`` scorers killed while a commit
    is held."""
    chosen: list[Scenario] = [KillSchedule(kills=kills)]
    if broker_restarts:
        chosen.append(BrokerRestarts(broker_restarts, broker_down_s))
    if argilla_stops:
        chosen.append(ArgillaStops(argilla_stops, argilla_stop_s))
    if replays:
        chosen.append(ReplayKill(replays))
    return chosen


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
    argilla_venv: Path | None = None,
) -> dict[str, Any]:
    """One chaos run; the figures, with ``failures`` (empty when every invariant held). Without
    ``stack``, it starts its own (Argilla from ``argilla_venv``, see :func:`live.stack`)."""
    from kafka import KafkaProducer

    from connectors.ingest import publish
    from connectors.kafka import ensure_topics

    seed_docs, test, stream = split(documents, seed)
    chosen = list(scenarios) if scenarios is not None else [KillSchedule(kills=kills)]
    restarts = any(isinstance(s, BrokerRestarts) and s.restarts for s in chosen)
    started = time.monotonic()
    own = live.stack("alloop-chaos-", "disk" if restarts else "memory", argilla_venv)
    with nullcontext(stack) if stack is not None else own as running:
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
        state: Run | None = None
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
            for scenario in chosen:
                if state is not None:
                    _recover(scenario, state)
            if answering is not None:
                answering.close()
            producer.close(timeout=10)
            for tail in [*tails.values(), *dead.values()]:
                tail.close()
            loop.stop()
    return figures


def _recover(scenario: Scenario, run: Run) -> None:
    """Undo what ``scenario`` left broken; a failure is told, and the loop is stopped anyway."""
    try:
        scenario.recover(run)
    except Exception as exc:  # the run already failed; stopping its processes comes first
        run.note(f"{scenario.name} could not recover: {type(exc).__name__}: {exc}")


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
        f"tagged                  {figures['tagged']} ({figures['replayed']} replayed: "
        f"{figures['tagged_copies']} more copies, {figures['unequal_copies']} unequal)",
        f"kills                   {', '.join(f'{k} {v}' for k, v in kills.items())}",
        f"replay kills            {figures.get('replay_kills', 0)} (commit held, "
        f"{figures.get('replay_misses', 0)} missed)",
        f"broker restarts         {figures.get('broker_restarts', 0)} "
        f"(down {figures.get('broker_down_s', 0):g} s each)",
        f"Argilla stops           {figures.get('argilla_stops', 0)} "
        f"({figures.get('argilla_stop_s', 0):g} s each), Redis kills {figures.get('redis_kills', 0)}",
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
