"""`alloop bench learning-curve --end-to-end` on the real broker and Argilla: the curve comes
from versions the trainer made out of answers that went through Argilla and the webhooks."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench import learning_curve_e2e, live
from connectors.argilla.setup import owner_client
from loop.classification.factories import load_version
from loop.datasets import DEFAULT_DATASET, read_tweets
from loop.labels import LabelStore
from loop.messages import Document
from loop.readers import read_documents
from loop.registry import ModelRegistry
from stack.argilla import LocalArgilla

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def write(path: Path, docs: Sequence[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return path


def test_the_curve_runs_through_the_loop(
    broker: str, argilla: LocalArgilla, tmp_path: Path
) -> None:
    tweets = [{"id": d.id, "text": d.text, "label": d.label} for d in read_tweets(DEFAULT_DATASET)]
    train = write(tmp_path / "train.jsonl", tweets[:240])
    test = write(tmp_path / "test.jsonl", tweets[-90:])

    def webhooks() -> list[str]:
        with owner_client(argilla.url, argilla.credentials.owner_api_key) as http:
            return [h["url"] for h in http.get("/api/v1/webhooks").json()["items"]]

    before = webhooks()
    summary = learning_curve_e2e.run(
        train,
        test,
        budget=40,
        step=20,  # a round trains on about 16: all of one class is about one chance in 1,000
        window=80,
        gate_size=40,
        seeds=1,
        model_kind="keywords",
        simulation=False,
        out=tmp_path / "curve",
        stack=live.Stack(tmp_path / "stack", broker, argilla),
    )

    pool = {str(d["id"]) for d in tweets[:240]}
    streamed, gate = learning_curve_e2e.gate_split(
        [d for d in read_documents(train) if isinstance(d, Document)], 40
    )
    assert len(gate) == 40 and not {d.id for d in gate} & {d.id for d in streamed}
    testset = [d for d in read_documents(test) if isinstance(d, Document)]
    names = ["Bearish", "Bullish", "Neutral"]
    for name in ("breaking-ties", "random"):
        (run,) = summary[name]["runs"]
        points = run["points"]
        assert [p["labels"] for p in points] == [20, 40]
        assert [p["in_store"] for p in points] == [20, 40]  # each round saw every answer
        assert [p["version"] for p in points] == ["v0001", "v0002"]
        # The trainer's store holds the oracle's answers, each once, all from the pool.
        store = LabelStore(Path(run["home"]) / "labels" / "labels.db")
        answered = {a.id for a in store.answers() if a.origin != "test-file"}
        assert len(answered) == len(store) - 40 == 40
        assert answered <= pool - {d.id for d in gate}  # the evaluation file is never streamed
        assert {a.id for a in store.answers() if a.origin == "test-file"} == {d.id for d in gate}
        # Each point is that version's score on the test file, as scored here.
        registry = ModelRegistry(Path(run["home"]) / "registry")
        for point in points:
            model = load_version(registry, point["version"])
            expected = learning_curve_e2e.macro_f1(model, testset, names)
            assert point["macro_f1"] == round(expected, 4)
        assert summary[name]["macro_f1_mean"] == [p["macro_f1"] for p in points]
    assert webhooks() == before  # each run removed its webhook
    assert 0 < summary["full_data_macro_f1"] <= 1
    assert (tmp_path / "curve.png").stat().st_size > 0
    assert json.loads((tmp_path / "curve.json").read_text())["mode"] == "end-to-end"


def test_the_loop_serves_the_delta_between_the_versions_it_made(
    broker: str, argilla: LocalArgilla, tmp_path: Path
) -> None:
    """Classification through the real stack: answers given in Argilla become two versions,
    and the running API serves their evaluations, the delta between them and the curve."""
    tweets = [d for d in read_tweets(DEFAULT_DATASET)][:200]
    seen: dict[str, Any] = {}

    def ask_the_api(loop: live.Loop) -> None:
        base = f"http://127.0.0.1:{loop.port}"
        for name, path in {
            "delta": "/v1/evaluations/deltas",
            "curve": "/v1/curves",
            "queue": "/v1/queue",
        }.items():
            answer = httpx.get(base + path, timeout=60)
            assert answer.status_code == 200, answer.text
            seen[name] = answer.json()

    streamed, gate = learning_curve_e2e.gate_split(tweets, 40)
    points, _ = learning_curve_e2e.one_run(
        live.Stack(tmp_path / "stack", broker, argilla),
        streamed,
        ["Bearish", "Bullish", "Neutral"],
        strategy="breaking-ties",
        seed=0,
        budget=40,
        step=20,
        window=80,
        model_kind="keywords",
        gate=gate,
        inspect=ask_the_api,
    )

    assert [p.version for p in points] == ["v0001", "v0002"]
    delta = seen["delta"]
    assert (delta["base"], delta["head"]) == ("v0001", "v0002")
    assert "macro_f1" in delta and delta["per_label"]
    macro = next(c for c in seen["curve"] if c["metric"] == "macro_f1")
    assert [p["version"] for p in macro["points"]] == ["v0001", "v0002"]
    assert {p["test_size"] for p in macro["points"]} == {40}  # both on the evaluation file
    assert seen["queue"]["labelled"] == 80
