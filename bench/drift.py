"""Drift detection on real data: false alarms on a stream that does not drift, and how many
windows a sudden or a gradual shift to another source takes to be flagged.

Financial tweets (twitter_financial_news_sentiment) are the stream the model was trained for;
banking77 customer utterances are the other source. Every text is embedded once by the
packaged MiniLM (the body of a head-only version, as the scorer has it) and scored by a
logistic-regression head fitted on ``seed_size`` labelled tweets (SetFit's head, alloop's
regularisation). Each run shuffles the pools with its seed and plays three streams, each
after ``reference_windows`` windows of tweets that become the reference, as in the scorer:

* steady: ``windows`` windows of tweets, none drifted: every flag is a false alarm;
* sudden: ``before`` windows of tweets, then banking utterances only;
* gradual: banking's share rises from 0 to ``top`` over ``ramp`` windows (then stays).

The delays count windows from the first one that holds the new source (1: flagged at once).
The report runs the same :func:`loop.drift.report.check` the scorer's monitor runs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from loop.classification.base import ClassifierConfig
from loop.classification.setfit import logistic_head
from loop.datasets import DEFAULT_DATASET, read_tweets
from loop.drift.base import Window
from loop.drift.report import DriftConfig, DriftReport, check
from loop.embeddings.backbone import PackagedEncoder
from loop.readers import Columns, Rejected, read_documents

BANKING = DEFAULT_DATASET.parent / "banking77"


@dataclass(frozen=True)
class Pools:
    """Embedded texts: the tweets of the stream, the other source, and the fitted head."""

    tweets: np.ndarray
    other: np.ndarray
    head: Any
    labels: tuple[str, ...]


def read_texts(path: Path, label: str) -> list[tuple[str, str | None]]:
    out = []
    for item in read_documents(path, Columns(label=label)):
        if not isinstance(item, Rejected):
            out.append((item.text, item.label))
    return out


def embed_pools(
    tweets_dir: Path, other_csv: Path, seed_size: int, tweets: int, other: int, seed: int
) -> Pools:
    """Embed the tweets (``seed_size`` of them fit the head) and ``other`` texts of the
    other source, once for every run."""
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    docs = read_tweets(tweets_dir)
    picked = [docs[i] for i in rng.permutation(len(docs))[: seed_size + tweets]]
    foreign = read_texts(other_csv, "category")
    chosen = [foreign[i][0] for i in rng.permutation(len(foreign))[:other]]
    encoder = PackagedEncoder()
    texts = [d.text for d in picked] + chosen
    vectors = []
    with tqdm(total=len(texts), unit=" docs", desc="embedding") as bar:
        for start in range(0, len(texts), 256):
            vectors.append(encoder(texts[start : start + 256]))
            bar.update(len(texts[start : start + 256]))
    embedded = np.vstack(vectors)
    head = logistic_head(ClassifierConfig())
    head.fit(embedded[:seed_size], [str(d.label) for d in picked[:seed_size]])
    return Pools(
        tweets=embedded[seed_size : seed_size + tweets],
        other=embedded[seed_size + tweets :],
        head=head,
        labels=tuple(str(c) for c in head.classes_),
    )


def window_of(pools: Pools, vectors: np.ndarray) -> Window:
    probs = np.asarray(pools.head.predict_proba(vectors), dtype=np.float32)
    return Window(len(vectors), vectors.astype(np.float32), probs, pools.labels)


def stream(
    pools: Pools, shares: Sequence[float], size: int, rng: np.random.Generator
) -> list[Window]:
    """Windows of ``size`` documents, the other source's share of each given."""
    tweets = iter(rng.permutation(len(pools.tweets)))
    other = iter(rng.permutation(len(pools.other)))
    windows = []
    for share in shares:
        n_other = round(share * size)
        rows = [pools.tweets[next(tweets)] for _ in range(size - n_other)]
        rows += [pools.other[next(other)] for _ in range(n_other)]
        windows.append(window_of(pools, np.vstack(rows)))
    return windows


def play(
    windows: Sequence[Window], reference_windows: int, config: DriftConfig
) -> tuple[list[DriftReport], float]:
    """The reports of the windows after the reference, and seconds per report."""
    reference = windows[:reference_windows]
    joined = Window(
        sum(w.size for w in reference),
        np.vstack([w.embeddings for w in reference if w.embeddings is not None]),
        np.vstack([w.probabilities for w in reference if w.probabilities is not None]),
        reference[0].labels,
    )
    cache: dict[tuple[int, int], tuple[float, float]] = {}
    reports = []
    started = time.perf_counter()
    for number, current in enumerate(windows[reference_windows:], start=1):
        reports.append(
            check(config.methods(null_cache=cache), joined, current, config, window=number)
        )
    return reports, (time.perf_counter() - started) / max(1, len(reports))


def first_flag(reports: Sequence[DriftReport], start: int) -> int | None:
    """Windows from window ``start`` (1-based) to the first flagged one, counting it."""
    for report in reports[start - 1 :]:
        if report.drift:
            return report.window - start + 1
    return None


def run(
    *,
    seeds: int = 3,
    window: int = 200,
    reference_windows: int = 2,
    windows: int = 20,
    before: int = 5,
    after: int = 5,
    ramp: int = 10,
    top: float = 0.5,
    seed_size: int = 1000,
    config: DriftConfig = DriftConfig(),
    tweets_dir: Path = DEFAULT_DATASET,
    other_csv: Path = BANKING / "train.csv",
) -> dict[str, Any]:
    steady_len = reference_windows + windows
    sudden_shares = [0.0] * (reference_windows + before) + [1.0] * after
    gradual_shares = [0.0] * reference_windows + [top * i / ramp for i in range(ramp + 1)]
    most_tweets = max(steady_len, len(sudden_shares), len(gradual_shares)) * window
    most_other = max(after * window, int(sum(gradual_shares) * window) + ramp)
    pools = embed_pools(tweets_dir, other_csv, seed_size, most_tweets, most_other, seed=0)
    runs: list[dict[str, Any]] = []
    seconds = []
    for seed in range(seeds):
        rng = np.random.default_rng(1000 + seed)
        steady, t1 = play(stream(pools, [0.0] * steady_len, window, rng), reference_windows, config)
        sudden, t2 = play(stream(pools, sudden_shares, window, rng), reference_windows, config)
        gradual, t3 = play(stream(pools, gradual_shares, window, rng), reference_windows, config)
        seconds += [t1, t2, t3]
        flagged_at = first_flag(gradual, 2)  # window 1 of the ramp holds 0 % of the new source
        runs.append(
            {
                "seed": seed,
                "false_alarms": sum(r.drift for r in steady),
                "false_alarm_methods": sorted({m for r in steady for m in r.crossed}),
                "sudden_false_alarms": sum(r.drift for r in sudden[:before]),
                "sudden_delay": first_flag(sudden, before + 1),
                "sudden_methods": sudden[before].crossed,
                "gradual_false_alarms": int(gradual[0].drift),
                "gradual_delay": flagged_at,
                "gradual_share_at_flag": None
                if flagged_at is None
                else round(gradual_shares[reference_windows + flagged_at], 3),
                "gradual_methods": [] if flagged_at is None else gradual[flagged_at].crossed,
                "steady_scores": {
                    m: round(float(np.max([_score(r, m) for r in steady])), 4)
                    for m in ("embedding-auc", "label-mix", "confidence-drop")
                },
            }
        )
    return {
        "window": window,
        "reference_windows": reference_windows,
        "steady_windows": windows,
        "alpha": config.alpha,
        "seed_labels": seed_size,
        "runs": runs,
        "false_alarms": [r["false_alarms"] for r in runs],
        "sudden_delays": [r["sudden_delay"] for r in runs],
        "gradual_delays": [r["gradual_delay"] for r in runs],
        "gradual_share_at_flag": [r["gradual_share_at_flag"] for r in runs],
        "seconds_per_window": round(float(np.mean(seconds)), 3),
        "passed": all(
            r["false_alarms"] <= 1
            and r["sudden_delay"] is not None
            and r["sudden_delay"] <= 2
            and r["gradual_delay"] is not None
            for r in runs
        ),
    }


def _score(report: DriftReport, method: str) -> float:
    return next((r.score for r in report.results if r.method == method), float("nan"))


def report(result: dict[str, Any]) -> str:
    lines = [
        f"windows of {result['window']} documents, reference {result['reference_windows']} "
        f"windows, alpha {result['alpha']}, head fitted on {result['seed_labels']} tweets",
    ]
    for r in result["runs"]:
        lines.append(
            f"seed {r['seed']}: steady {r['false_alarms']} false alarm(s) in "
            f"{result['steady_windows']} windows {r['false_alarm_methods'] or ''}; "
            f"sudden flagged after {r['sudden_delay']} window(s) by {', '.join(r['sudden_methods'])}; "
            f"gradual flagged after {r['gradual_delay']} window(s) at "
            f"{r['gradual_share_at_flag']} banking by {', '.join(r['gradual_methods'])}"
        )
        lines.append(f"  highest steady scores: {r['steady_scores']}")
    lines.append(
        f"{result['seconds_per_window']} s per window report; "
        f"{'PASSED' if result['passed'] else 'FAILED'}"
    )
    return "\n".join(lines)
