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
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from kafka import KafkaProducer

from bench import live
from bench.live import Loop, Stack, wait_for
from loop.messages import Candidate, encode

ROOT = Path(__file__).resolve().parents[1]
TWEETS = ROOT.parent / "shared" / "datasets" / "twitter_financial_news_sentiment"


def measure(size: int, stack: Stack) -> dict[str, Any]:
    from connectors.argilla.oracle import Gold, Oracle
    from loop.datasets import read_tweets

    loop = Loop.create(
        stack,
        f"lat{size}",
        {
            "ALLOOP_ARGILLA__LABELS": "Bearish,Bullish,Neutral",
            "ALLOOP_ARGILLA__BUDGET": str(size + 10),
            "ALLOOP_TRAINER__MIN_NEW_LABELS": str(size),
            "ALLOOP_TRAINER__FULL_FINETUNE_EVERY": "0",
        },
    )
    home, port = loop.home, loop.port
    loop.start("api", ["api"])
    loop.start("labeler", ["worker", "labeler", "--no-vectors"])
    loop.start("trainer", ["worker", "trainer"])
    try:
        loop.wait_assigned("labeler", "trainer")
        tweets = read_tweets(TWEETS)[:size]
        producer = KafkaProducer(bootstrap_servers=stack.broker, acks="all")
        for i, tweet in enumerate(tweets):
            candidate = Candidate(
                id=tweet.id,
                text=tweet.text,
                strategy="bench",
                score=1.0 - i / size,
                reason="random",
            )
            producer.send(loop.topic("candidates"), key=tweet.id.encode(), value=encode(candidate))
        producer.flush()
        producer.close()
        wait_for(
            lambda: f"{size} written" in loop.log("labeler").read_text() or _written(home) >= size,
            300,
            "the queue",
        )
        credentials = stack.argilla.credentials
        oracle = Oracle(
            stack.argilla.url, credentials.annotator_api_key, Gold(tweets), prefix=loop.prefix
        )
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

        wait_for(lambda: served() is not None, 900, "a served version")
        latency = time.monotonic() - last_answer
        status = json.loads((home / "trainer" / "status.json").read_text())
        return {
            "labels": answered,
            "seconds": round(latency, 1),
            "round_seconds": status["duration_s"],
            "version": served(),
        }
    finally:
        loop.stop()


def _written(home: Path) -> int:
    text = (home / "labeler.log").read_text()
    return sum(
        int(part.split(" written")[0].split()[-1]) for part in text.split("candidate(s): ")[1:]
    )


def run(sizes: list[int]) -> dict[str, Any]:
    with live.stack("alloop-latency-") as running:
        results = {str(n): measure(n, running) for n in sizes}
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
