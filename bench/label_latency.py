"""Label-to-served latency: from the oracle's last answer until /v1/classify answers with a
version trained on it, through the real stack (broker, Argilla, labeler, API webhooks,
trainer, registry, API reload).

For each size N: N real tweets go to Argilla as candidates, the oracle annotator answers all
of them, and the trainer (``min_new_labels = N``) runs one head-only round on them. The clock
starts at the oracle's last submitted answer and stops when the API's /v1/classify names the
new version. Prints one line per size and, last, a JSON object.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from kafka import KafkaProducer

from loop.messages import Candidate, encode

ROOT = Path(__file__).resolve().parents[1]
TWEETS = ROOT.parent / "shared" / "datasets" / "twitter_financial_news_sentiment"


def _spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "workers.cli", *argv],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


def measure(size: int, scratch: Path, broker: str, argilla: Any) -> dict[str, Any]:
    from workers.annotate import Gold, Oracle
    from workers.argilla_setup import ensure_webhook, owner_client
    from workers.demo import read_tweets
    from workers.stack import free_port

    prefix = f"lat{size}-{secrets.token_hex(3)}"
    home = scratch / prefix
    port = free_port()
    creds = argilla.credentials
    with owner_client(argilla.url, creds.owner_api_key) as http:
        secret = ensure_webhook(http, f"http://127.0.0.1:{port}/v1/argilla/webhooks")
    env = {
        "ALLOOP_HOME": str(home),
        "ALLOOP_KAFKA__BOOTSTRAP_SERVERS": broker,
        **{
            f"ALLOOP_KAFKA__TOPICS__{t.upper()}": f"{prefix}.{t}"
            for t in ("raw", "tagged", "candidates", "labels", "models")
        },
        "ALLOOP_ARGILLA__URL": argilla.url,
        "ALLOOP_ARGILLA__API_KEY": creds.owner_api_key,
        "ALLOOP_ARGILLA__DATASET_PREFIX": prefix,
        "ALLOOP_ARGILLA__LABELS": "Bearish,Bullish,Neutral",
        "ALLOOP_ARGILLA__BUDGET": str(size + 10),
        "ALLOOP_ARGILLA__WEBHOOK_SECRET": secret,
        "ALLOOP_ARGILLA__LABELER_GROUP_ID": f"{prefix}-labeler",
        "ALLOOP_TRAINER__GROUP_ID": f"{prefix}-trainer",
        "ALLOOP_TRAINER__MIN_NEW_LABELS": str(size),
        "ALLOOP_TRAINER__FULL_FINETUNE_EVERY": "0",
        "ALLOOP_API__PORT": str(port),
        "ALLOOP_API__RELOAD_CHECK_S": "1",
        "ALLOOP_KAFKA__SESSION_TIMEOUT_MS": "6000",
        "ALLOOP_KAFKA__HEARTBEAT_INTERVAL_MS": "1000",
    }
    home.mkdir(parents=True)
    processes = [
        _spawn(["api"], env, home / "api.log"),
        _spawn(["worker", "labeler", "--no-vectors"], env, home / "labeler.log"),
        _spawn(["worker", "trainer"], env, home / "trainer.log"),
    ]
    try:
        _wait(
            lambda: "assigned partitions" in (home / "labeler.log").read_text(), 180, "the labeler"
        )
        _wait(
            lambda: "assigned partitions" in (home / "trainer.log").read_text(), 180, "the trainer"
        )
        tweets = read_tweets(TWEETS)[:size]
        producer = KafkaProducer(bootstrap_servers=broker, acks="all")
        for i, tweet in enumerate(tweets):
            candidate = Candidate(
                id=tweet.id,
                text=tweet.text,
                strategy="bench",
                score=1.0 - i / size,
                reason="random",
            )
            producer.send(f"{prefix}.candidates", key=tweet.id.encode(), value=encode(candidate))
        producer.flush()
        producer.close()
        _wait(
            lambda: (
                f"{size} written" in (home / "labeler.log").read_text() or _written(home) >= size
            ),
            300,
            "the queue",
        )
        oracle = Oracle(argilla.url, creds.annotator_api_key, Gold(tweets), prefix=prefix)
        answered = 0
        deadline = time.monotonic() + 600
        while answered < size and time.monotonic() < deadline:
            answered += oracle.run(size - answered).submitted
        oracle.close()
        last_answer = time.monotonic()
        headers = {"Content-Type": "application/json"}

        def served() -> str | None:
            try:
                answer = httpx.post(
                    f"http://127.0.0.1:{port}/v1/classify",
                    json={"text": "$AAPL up"},
                    headers=headers,
                    timeout=5,
                )
            except httpx.HTTPError:
                return None
            return str(answer.json().get("model_version")) if answer.status_code == 200 else None

        _wait(lambda: served() is not None, 900, "a served version")
        latency = time.monotonic() - last_answer
        status = json.loads((home / "trainer" / "status.json").read_text())
        return {
            "labels": answered,
            "seconds": round(latency, 1),
            "round_seconds": status["duration_s"],
            "version": served(),
        }
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _written(home: Path) -> int:
    text = (home / "labeler.log").read_text()
    return sum(
        int(part.split(" written")[0].split()[-1]) for part in text.split("candidate(s): ")[1:]
    )


def run(sizes: list[int]) -> dict[str, Any]:
    from workers import argilla_local
    from workers.stack import start_broker, stop_service

    with tempfile.TemporaryDirectory(prefix="alloop-latency-") as folder:
        scratch = Path(folder)
        broker = start_broker(scratch / "stack")
        local = argilla_local.start(scratch / "argilla", ROOT / ".venv-argilla")
        try:
            results = {str(n): measure(n, scratch, broker.address or "", local) for n in sizes}
        finally:
            for service in reversed(local.services):
                stop_service(service)
            stop_service(broker)
    return {"sizes": sizes, "results": results}


def main() -> None:
    sizes = [int(s) for s in (sys.argv[1] if len(sys.argv) > 1 else "200,1000").split(",")]
    result = run(sizes)
    for n, r in result["results"].items():
        print(
            f"{n:>6} labels: served {r['seconds']} s after the last answer (round {r['round_seconds']} s)"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
