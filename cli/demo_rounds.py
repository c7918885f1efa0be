"""The demo's labeling rounds: the oracle answers in phases, a training round after each,
and what each round made (test set, gate, curve, delta; the entity probe)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import httpx

from loop.datasets import read_tweets
from loop.messages import Document
from loop.registry import ModelRegistry
from loop.settings import Settings
from stack.credentials import ArgillaCredentials

logger = logging.getLogger(__name__)


PHASES = 3
"""The oracle's answers come in this many phases, a training round after each: with the
seed model, that makes the points of an improvement curve."""
ENTITY_PHASES = 2
"""The same for the entity task (its rounds train a tagger: minutes each)."""


def evaluation_sample(stream: Sequence[Document], settings: Settings) -> int:
    """How many streamed documents the scorer draws for the evaluation sample."""
    from loop.training.split import in_evaluation_sample

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
    from loop.evaluation.curves import curves

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
    from connectors.argilla.oracle import Gold, Oracle
    from stack.discovery import argilla_address

    url, _ = argilla_address(settings)
    credentials = ArgillaCredentials.load(settings.state_dir) if not settings.argilla.url else None
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
    from connectors.argilla.oracle import Gold, Oracle
    from stack.discovery import argilla_address

    url, _ = argilla_address(settings)
    credentials = ArgillaCredentials.load(settings.state_dir) if not settings.argilla.url else None
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
