"""Two classifier versions made by real training rounds (SetFit on the packaged MiniLM, head
only) on the shipped financial tweets, and a label store with more answers than they trained
on, some from two annotators: what the model owners' page shows in its test and screenshots."""

from __future__ import annotations

from loop.classification.base import ClassifierConfig
from loop.classification.setfit import SetFitFactory
from loop.datasets import DEFAULT_DATASET, read_tweets, take_per_label
from loop.labels import LabelStore, ResolvedLabel
from loop.messages import Document, LabelEvent
from loop.registry import ModelRegistry
from loop.settings import Settings
from loop.training.gate import Gate
from loop.training.rounds import RoundConfig, run_round
from loop.training.split import EVALUATION

TEST_PER_LABEL = 12
ROUND_PER_LABEL = (4, 16)
"""Training labels per label of the first and the second round."""
LATER_PER_LABEL = 20
"""Labels in the store at the end, per label: the last ones are not trained on yet."""


def _answer(
    doc: Document, origin: str, annotator: str = "annotator", label: str = ""
) -> LabelEvent:
    return LabelEvent(
        id=doc.id,
        text=doc.text,
        label=label or str(doc.label),
        response_id=f"{doc.id}-{annotator}",
        annotator=annotator,
        origin=origin,
    )


def _answers() -> list[LabelEvent]:
    tweets = read_tweets(DEFAULT_DATASET)
    test = take_per_label(tweets[-600:], TEST_PER_LABEL)
    train = take_per_label(tweets[:600], LATER_PER_LABEL)
    events = [_answer(doc, EVALUATION) for doc in test]
    events += [_answer(doc, "uncertain") for doc in train]
    # A second annotator on three training documents: agrees twice, disagrees once.
    events += [_answer(doc, "uncertain", "second") for doc in train[:2]]
    events.append(
        _answer(
            train[2], "uncertain", "second", "Bearish" if train[2].label != "Bearish" else "Bullish"
        )
    )
    return events


def _first(labelled: list[ResolvedLabel], per_label: int) -> list[ResolvedLabel]:
    """The test documents and the first ``per_label`` training labels of each label."""
    counts: dict[str, int] = {}
    kept = []
    for item in labelled:
        label = str(item.label)
        if item.origin == EVALUATION or counts.get(label, 0) < per_label:
            counts[label] = counts.get(label, 0) + (item.origin != EVALUATION)
            kept.append(item)
    return kept


def make_two_versions(settings: Settings) -> ModelRegistry:
    """v0001 and v0002 in ``settings``' registry, by two rounds; the answers in its label
    store. v0001 is promoted; v0002 is promoted too if the gate let it through."""
    store = LabelStore(settings.labels_path)
    try:
        store.add(_answers())
        labelled = store.labelled()
    finally:
        store.close()
    registry = ModelRegistry(settings.registry_path)
    config = RoundConfig(gate=Gate(min_test_size=10), classifier=ClassifierConfig(num_iterations=2))
    for per_label in ROUND_PER_LABEL:
        result = run_round(_first(labelled, per_label), registry, SetFitFactory(), config)
        assert result.version is not None, result.skipped
    if registry.promoted() is None:
        registry.promote("v0001")
    return registry
