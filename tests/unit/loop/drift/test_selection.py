"""Drift-aware selection: while drifted, a share of each round goes to the documents farthest
from the reference, with reason ``drift``."""

from __future__ import annotations

import numpy as np

from loop.drift.selection import novelty, with_drift
from loop.messages import TaggedDocument
from loop.selection.base import Pick, Scored, SelectionConfig
from loop.selection.windows import CandidateRounds


def vector(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float32)


REFERENCE = np.stack([vector(1, 0, 0), vector(0.9, 0.1, 0)])


def test_novelty_is_the_distance_to_the_nearest_reference_document() -> None:
    far = novelty(np.stack([vector(2, 0, 0), vector(0, 0, 1)]), REFERENCE)
    assert far[0] < 1e-6 and abs(far[1] - 1.0) < 1e-6


def test_a_share_of_the_uncertain_picks_goes_to_the_farthest_documents() -> None:
    window = [
        Scored("old-1", "a", {}, vector(1, 0, 0)),
        Scored("old-2", "b", {}, vector(1, 0.05, 0)),
        Scored("new-1", "c", {}, vector(0, 0, 1)),
        Scored("new-2", "d", {}, vector(0, 1, 0.2)),
        Scored("old-3", "e", {}, vector(0.9, 0.1, 0)),
    ]
    picks = [
        Pick("old-1", 0.9, "uncertain", "breaking-ties"),
        Pick("old-2", 0.8, "rare", "breaking-ties"),
        Pick("old-3", 0.7, "uncertain", "breaking-ties"),
        Pick("new-2", 0.1, "random", "random"),
    ]
    out = with_drift(window, picks, REFERENCE, share=0.5)
    assert [(p.id, p.reason) for p in out] == [
        ("new-1", "drift"),  # the farthest document not picked yet
        ("old-1", "uncertain"),
        ("old-2", "rare"),
        ("new-2", "random"),
    ], "the least doubtful uncertainty pick made room; rare and random picks stay"
    assert out[0].strategy == "drift-novelty" and out[0].score > 0.9
    assert with_drift(window, picks, REFERENCE, share=0.0) == picks


def tagged(i: int, version: str = "v0001") -> TaggedDocument:
    p = 0.5 + (i % 7) / 20
    return TaggedDocument(
        id=f"d{i}",
        text=f"text {i}",
        status="scored",
        label="up",
        score=p,
        probabilities={"up": p, "down": 1 - p},
        model_version=version,
    )


def test_rounds_give_drifted_documents_their_share_only_while_drifted() -> None:
    docs = [tagged(i) for i in range(40)]
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(40, 3)).astype(np.float32) * 0.05 + vector(1, 0, 0)
    vectors[35:] = vector(0, 0, 1)  # five documents far from the reference
    drifted = {"now": True}

    def drifted_from(version: str | None) -> np.ndarray | None:
        return REFERENCE if drifted["now"] and version == "v0001" else None

    def rounds() -> CandidateRounds:
        return CandidateRounds(
            SelectionConfig(
                batch_size=10, random_fraction=0.0, rare_examples=0, duplicate_threshold=1.01
            ),
            window_size=100,
            round_size=40,
            labelled=lambda _: {"up": 50, "down": 50},
            drifted_from=drifted_from,
            drift_share=0.3,
        )

    out = rounds().add(docs, vectors)
    reasons = [c.reason for c in out]
    assert reasons.count("drift") == 3 and len(out) == 10
    assert {c.id for c in out if c.reason == "drift"} <= {f"d{i}" for i in range(35, 40)}
    drifted["now"] = False
    assert "drift" not in {c.reason for c in rounds().add(docs, vectors)}
