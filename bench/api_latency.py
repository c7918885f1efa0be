"""What the API adds to a prediction: ``POST /v1/predict`` for one document against the raw
model calls it makes, in one process.

Both sides run in this process, request after request, alternating which goes first, so that
a loaded machine slows both alike:

* raw: the served classifier's ``predict_proba`` and the entity tagger's ``tag`` on the text,
  called directly (what the endpoint computes);
* api: the same text posted to ``/v1/predict`` of the real app (``api.app.create_app``,
  started with its lifespan, one API key configured and sent), called the way an ASGI
  server calls it once it has parsed a request (:func:`asgi_post`): the middleware, routing,
  the key check, body parsing and validation, the thread pool, metrics and the JSON
  response. Neither a socket, nor the server's HTTP parsing, nor an HTTP client is timed
  (the first version of this benchmark went through httpx's in-process client, whose own
  cost it counted as the API's).

Figures are medians (p50) and 99th percentiles in milliseconds; ``added_p50_ms`` is the
median of the per-request differences (api minus the raw call next to it).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import SecretStr

from loop.settings import Settings

TARGET_ADDED_P50_MS = 2.0

Message = dict[str, Any]
"""An ASGI message."""


@dataclass
class ApiLatencyResult:
    requests: int
    raw_p50_ms: float
    raw_p99_ms: float
    api_p50_ms: float
    api_p99_ms: float
    added_p50_ms: float
    """Median of the per-request differences, api minus the raw call beside it."""
    added_p99_ms: float
    added_cpu_p50_ms: float | None
    """Median of the per-request differences in CPU time of this process (``process_time``,
    all its threads): what the API costs, whatever else the machine runs."""
    model_version: str
    entity_version: str | None
    cpus: int
    load: float | None
    """The machine's one-minute load average when the run ended."""


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, linearly interpolated; 0 when empty."""
    if not values:
        return 0.0
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def summarise(
    raw_s: Sequence[float],
    api_s: Sequence[float],
    model_version: str,
    entity_version: str | None,
    cpu_s: tuple[Sequence[float], Sequence[float]] | None = None,
) -> ApiLatencyResult:
    """The figures of paired timings (seconds, one raw and one api timing per request; and
    the same in CPU time, when given)."""
    if len(raw_s) != len(api_s):
        raise ValueError(f"{len(raw_s)} raw timings but {len(api_s)} api timings")
    added = [api - raw for raw, api in zip(raw_s, api_s, strict=True)]
    added_cpu = [api - raw for raw, api in zip(*cpu_s, strict=True)] if cpu_s else None

    def ms(values: Sequence[float], q: float) -> float:
        return round(percentile(values, q) * 1000, 3)

    return ApiLatencyResult(
        requests=len(raw_s),
        raw_p50_ms=ms(raw_s, 50),
        raw_p99_ms=ms(raw_s, 99),
        api_p50_ms=ms(api_s, 50),
        api_p99_ms=ms(api_s, 99),
        added_p50_ms=ms(added, 50),
        added_p99_ms=ms(added, 99),
        added_cpu_p50_ms=ms(added_cpu, 50) if added_cpu is not None else None,
        model_version=model_version,
        entity_version=entity_version,
        cpus=os.cpu_count() or 0,
        load=round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    )


def bench_settings(settings: Settings, key: str) -> Settings:
    """``settings`` for an in-process run: ``key`` the only API key, no broker listened to."""
    return settings.model_copy(
        update={
            "api": settings.api.model_copy(update={"keys": [SecretStr(key)]}),
            "kafka": settings.kafka.model_copy(update={"model_events": False}),
        }
    )


async def asgi_post(
    app: Any, path: str, body: bytes, headers: Sequence[tuple[bytes, bytes]] = ()
) -> tuple[int, bytes]:
    """POST ``body`` (JSON) to ``path`` of the ASGI ``app`` as a server would after parsing the
    request: one ``http`` scope, the body in one message; the status and body answered."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    request: Message | None = {"type": "http.request", "body": body, "more_body": False}
    status = 0
    answer: list[bytes] = []

    async def receive() -> Message:
        nonlocal request
        message, request = request, None
        return message if message is not None else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
        elif message["type"] == "http.response.body":
            answer.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(answer)


async def measure(
    settings: Settings,
    create_app: Callable[[Settings], Any],
    texts: Sequence[str],
    requests: int,
    warmup: int = 20,
) -> tuple[list[float], list[float], list[float], list[float], str, str | None]:
    """Paired wall and CPU timings (seconds) of ``requests`` one-document predictions, raw and
    through the app ``create_app`` makes (:func:`api.app.create_app`, given by the command:
    bench does not import api); with the versions that answered."""
    key = secrets.token_urlsafe(32)
    app = create_app(bench_settings(settings, key))
    state = app.state.alloop
    auth = [(b"x-api-key", key.encode())]
    raw_s: list[float] = []
    api_s: list[float] = []
    raw_cpu: list[float] = []
    api_cpu: list[float] = []
    async with app.router.lifespan_context(app):
        served = state.watcher.served
        if served is None:
            raise RuntimeError(f"no classifier is promoted in {state.registry.root}")
        tagger = state.entities

        def raw(text: str) -> tuple[float, float]:
            started, cpu = time.perf_counter(), time.process_time()
            served.classifier.predict_proba([text], 32)
            if tagger is not None and tagger.version is not None:
                tagger.tag([text], 32)
            return time.perf_counter() - started, time.process_time() - cpu

        async def api(text: str) -> tuple[float, float]:
            body = json.dumps({"text": text}).encode()
            started, cpu = time.perf_counter(), time.process_time()
            status, answer = await asgi_post(app, "/v1/predict", body, auth)
            elapsed = time.perf_counter() - started, time.process_time() - cpu
            if status != 200:
                raise RuntimeError(f"/v1/predict answered {status}: {answer.decode()}")
            return elapsed

        for i in range(warmup + requests):
            text = texts[i % len(texts)]
            if i % 2:  # alternate which side goes first
                api_time = await api(text)
                raw_time = raw(text)
            else:
                raw_time = raw(text)
                api_time = await api(text)
            if i >= warmup:
                raw_s.append(raw_time[0])
                api_s.append(api_time[0])
                raw_cpu.append(raw_time[1])
                api_cpu.append(api_time[1])
        entity_version = tagger.version if tagger is not None else None
    return raw_s, api_s, raw_cpu, api_cpu, served.version, entity_version


def run(
    settings: Settings, create_app: Callable[[Settings], Any], requests: int = 1000
) -> ApiLatencyResult:
    """The figures for the versions ``settings`` serve, or, when no classifier is promoted
    there, for a seed SetFit model trained in a scratch folder (entities from the patterns);
    the documents are the shipped tweets."""
    from loop.datasets import DEFAULT_DATASET, read_tweets
    from loop.registry import ModelRegistry

    texts = [doc.text for doc in read_tweets(DEFAULT_DATASET)]

    if ModelRegistry(settings.registry_path).promoted() is not None:
        raw_s, api_s, raw_cpu, api_cpu, version, entity = asyncio.run(
            measure(settings, create_app, texts, requests)
        )
        return summarise(raw_s, api_s, version, entity, (raw_cpu, api_cpu))
    from bench.seed_models import in_folder, seed_classifier

    with tempfile.TemporaryDirectory(prefix="alloop-bench-api-") as scratch:
        scratch_settings = in_folder(settings, Path(scratch), entities=True)
        seed_classifier(ModelRegistry(scratch_settings.registry_path))
        raw_s, api_s, raw_cpu, api_cpu, version, entity = asyncio.run(
            measure(scratch_settings, create_app, texts, requests)
        )
    return summarise(raw_s, api_s, version, entity, (raw_cpu, api_cpu))


def report(result: ApiLatencyResult) -> str:
    verdict = "met" if result.added_p50_ms <= TARGET_ADDED_P50_MS else "NOT met"

    def pair(p50: float, p99: float) -> str:
        return f"p50 {p50:.2f} ms, p99 {p99:.2f} ms"

    rows = {
        "requests": f"{result.requests} of one document ({result.cpus} CPUs, load {result.load})",
        "raw model calls": pair(result.raw_p50_ms, result.raw_p99_ms),
        "POST /v1/predict": pair(result.api_p50_ms, result.api_p99_ms),
        "added by the API": f"{pair(result.added_p50_ms, result.added_p99_ms)} "
        f"(target p50 <= {TARGET_ADDED_P50_MS:g} ms: {verdict})",
        "added CPU time": f"p50 {result.added_cpu_p50_ms} ms",
    }
    return "\n".join(
        [*(f"{name:<18}{text}" for name, text in rows.items()), json.dumps(asdict(result))]
    )
