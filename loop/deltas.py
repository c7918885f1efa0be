"""What changed between two versions, on the test documents both were scored on.

Per label: the F1 of each version and the difference, with a paired bootstrap confidence
interval (the same resampled documents for both versions, so the interval reflects the change,
not the noise of each score). Per document: which ones flipped from right to wrong (broken)
and from wrong to right (fixed).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel

from loop.evaluation import Prediction


class MetricDelta(BaseModel):
    """A metric in the base and the head version, their difference and its interval."""

    name: str
    label: str | None = None
    base: float
    head: float
    delta: float
    ci_low: float
    ci_high: float
    support: int

    @property
    def significant(self) -> bool:
        """Whether the interval excludes zero."""
        return self.ci_low > 0 or self.ci_high < 0


class Flip(BaseModel):
    id: str
    gold: str
    base: str
    head: str


class Delta(BaseModel):
    """The comparison of ``head`` against ``base``."""

    base: str
    head: str
    common_test_size: int
    confidence: float
    macro_f1: MetricDelta
    accuracy: MetricDelta
    per_label: list[MetricDelta]
    fixed: list[Flip]
    broken: list[Flip]


def _f1_per_label(gold: np.ndarray, said: np.ndarray, n_labels: int) -> np.ndarray:
    """F1 per label for each row of index arrays of shape (samples, documents)."""
    rows = gold.shape[0]
    offsets = (np.arange(rows) * n_labels)[:, None]
    tp = np.bincount((offsets + gold)[gold == said], minlength=rows * n_labels).reshape(
        rows, n_labels
    )
    actual = np.bincount((offsets + gold).ravel(), minlength=rows * n_labels).reshape(
        rows, n_labels
    )
    predicted = np.bincount((offsets + said).ravel(), minlength=rows * n_labels).reshape(
        rows, n_labels
    )
    denom = actual + predicted
    return np.divide(2 * tp, denom, out=np.zeros(tp.shape), where=denom > 0)


def _macro(f1: np.ndarray, support: np.ndarray) -> np.ndarray:
    present = support > 0
    counts = present.sum(axis=1)
    return np.divide((f1 * present).sum(axis=1), counts, out=np.zeros(len(f1)), where=counts > 0)


def compare(
    base: Sequence[Prediction],
    head: Sequence[Prediction],
    labels: Sequence[str],
    *,
    base_version: str,
    head_version: str,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Delta:
    """Compare two versions on the documents both were scored on (matched by id)."""
    base_by_id = {p.id: p for p in base}
    common = sorted(p.id for p in head if p.id in base_by_id)
    head_by_id = {p.id: p for p in head}
    names = list(labels)
    for doc in common:
        for name in (head_by_id[doc].gold, base_by_id[doc].predicted, head_by_id[doc].predicted):
            if name not in names:
                names.append(name)
    index = {name: i for i, name in enumerate(names)}
    gold = np.array([index[head_by_id[d].gold] for d in common], dtype=np.int64)
    said_base = np.array([index[base_by_id[d].predicted] for d in common], dtype=np.int64)
    said_head = np.array([index[head_by_id[d].predicted] for d in common], dtype=np.int64)
    n = len(common)
    k = len(names)

    rng = np.random.default_rng(seed)
    samples = rng.integers(0, n, size=(resamples, n)) if n else np.zeros((resamples, 0), int)
    point = np.arange(n)[None, :]
    tail = (1 - confidence) / 2 * 100

    def stats(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        g = gold[rows]
        f1_base = _f1_per_label(g, said_base[rows], k)
        f1_head = _f1_per_label(g, said_head[rows], k)
        support = np.stack([np.bincount(r, minlength=k) for r in g]) if len(g) else np.zeros((0, k))
        acc_base = (g == said_base[rows]).mean(axis=1) if n else np.zeros(len(rows))
        acc_head = (g == said_head[rows]).mean(axis=1) if n else np.zeros(len(rows))
        return f1_base, f1_head, support, np.stack([acc_base, acc_head], axis=1)

    f1_b, f1_h, support, acc = stats(point)
    boot_b, boot_h, boot_support, boot_acc = stats(samples)

    def metric(
        name: str, label: str | None, b: float, h: float, diffs: np.ndarray, sup: int
    ) -> MetricDelta:
        low, high = np.percentile(diffs, [tail, 100 - tail]) if n else (0.0, 0.0)
        return MetricDelta(
            name=name,
            label=label,
            base=round(b, 6),
            head=round(h, 6),
            delta=round(h - b, 6),
            ci_low=round(float(low), 6),
            ci_high=round(float(high), 6),
            support=sup,
        )

    per_label = [
        metric(
            "f1",
            names[i],
            float(f1_b[0, i]),
            float(f1_h[0, i]),
            boot_h[:, i] - boot_b[:, i],
            int(support[0, i]),
        )
        for i in range(k)
        if support[0, i] > 0 or f1_b[0, i] > 0 or f1_h[0, i] > 0
    ]
    macro_b, macro_h = _macro(f1_b, support)[0], _macro(f1_h, support)[0]
    boot_macro = _macro(boot_h, boot_support) - _macro(boot_b, boot_support)
    flips_fixed: list[Flip] = []
    flips_broken: list[Flip] = []
    for i, doc in enumerate(common):
        right_before, right_now = said_base[i] == gold[i], said_head[i] == gold[i]
        if right_before != right_now:
            flip = Flip(
                id=doc, gold=names[gold[i]], base=names[said_base[i]], head=names[said_head[i]]
            )
            (flips_fixed if right_now else flips_broken).append(flip)
    return Delta(
        base=base_version,
        head=head_version,
        common_test_size=n,
        confidence=confidence,
        macro_f1=metric("macro_f1", None, float(macro_b), float(macro_h), boot_macro, n),
        accuracy=metric(
            "accuracy", None, float(acc[0, 0]), float(acc[0, 1]), boot_acc[:, 1] - boot_acc[:, 0], n
        ),
        per_label=per_label,
        fixed=flips_fixed,
        broken=flips_broken,
    )
