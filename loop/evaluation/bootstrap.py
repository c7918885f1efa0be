"""The paired bootstrap both tasks' deltas use.

Two versions are scored on the same test documents; resampling the documents (the same draw
for both versions) gives the spread of the *difference*, not the noise of each score. A task
sums its per-document counts (true positives, spans, right answers) with the weights of
:func:`weights`, computes its metric on each row, and hands the two versions' rows to
:func:`metric_delta`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from loop.evaluation.base import MetricDelta


def weights(documents: int, resamples: int, seed: int) -> npt.NDArray[np.int64]:
    """A ``(1 + resamples) x documents`` matrix: row 0 counts every document once (the point
    estimate), each further row how often one bootstrap sample drew each document."""
    rng = np.random.default_rng(seed)
    drawn = np.zeros((resamples, documents), dtype=np.int64)
    if documents:
        samples = rng.integers(0, documents, size=(resamples, documents))
        np.add.at(drawn, (np.arange(resamples)[:, None], samples), 1)
    return np.vstack([np.ones((1, documents), dtype=np.int64), drawn])


def interval(differences: npt.NDArray[np.float64], confidence: float) -> tuple[float, float]:
    """The central ``confidence`` interval of the resampled differences; (0, 0) for none."""
    if differences.size == 0:
        return 0.0, 0.0
    tail = (1 - confidence) / 2
    low, high = np.quantile(differences, [tail, 1 - tail])
    return float(low), float(high)


def metric_delta(
    name: str,
    base: npt.NDArray[np.float64],
    head: npt.NDArray[np.float64],
    *,
    support: int,
    confidence: float,
    documents: int,
    label: str | None = None,
    digits: int = 6,
) -> MetricDelta:
    """The delta of one metric from its values on :func:`weights`' rows for both versions
    (row 0: the point estimate; the others: the resamples)."""
    low, high = interval(head[1:] - base[1:], confidence) if documents else (0.0, 0.0)
    return MetricDelta(
        name=name,
        label=label,
        base=round(float(base[0]), digits),
        head=round(float(head[0]), digits),
        delta=round(float(head[0] - base[0]), digits),
        ci_low=round(low, digits),
        ci_high=round(high, digits),
        support=support,
    )
