"""Fixtures shared by all tests: the shared datasets and a small real SetFit model."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from loop.messages import Document
from loop.registry import ModelRegistry

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
TWEETS = DATASETS / "twitter_financial_news_sentiment"
TWEET_LABELS = {"0": "Bearish", "1": "Bullish", "2": "Neutral"}


def tweets(
    split: str = "train", limit: int | None = None, per_label: int | None = None
) -> list[Document]:
    """Real labelled tweets from the shared dataset, in file order."""
    path = TWEETS / ("sent_train.csv" if split == "train" else "sent_valid.csv")
    docs: list[Document] = []
    seen: dict[str, int] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for i, row in enumerate(csv.DictReader(handle)):
            label = TWEET_LABELS[row["label"]]
            if per_label is not None:
                if seen.get(label, 0) >= per_label:
                    continue
                seen[label] = seen.get(label, 0) + 1
            docs.append(Document(id=f"{split}-{i}", text=row["text"], label=label))
            if limit is not None and len(docs) >= limit:
                break
    return docs


def tagged_tweets_conll(
    split: str, spans: int, without: int, out: Path, *, max_words: int | None = None
) -> Path:
    """Real tweets as a CoNLL file, tagged by the financial patterns (cashtags, coins,
    currency pairs) as the demo's annotators accept their suggestions: the first ``spans``
    tweets in which the patterns find an entity and the first ``without`` in which they find
    none, of at most ``max_words`` words each; every sentence named by the tweet's id."""
    from loop.entities.conll import conll_sentence
    from loop.entities.patterns import PatternExtractor

    patterns = PatternExtractor()
    wanted = {True: spans, False: without}
    sentences = []
    for doc in tweets(split):
        if max_words is not None and len(doc.text.split()) > max_words:
            continue
        found = patterns.matches(doc.text)
        if wanted[bool(found)] > 0:
            wanted[bool(found)] -= 1
            sentences.append(conll_sentence(doc.text, found, {"id": doc.id}))
        if not any(wanted.values()):
            break
    out.write_text("".join(sentences), encoding="utf-8")
    return out


@pytest.fixture(scope="session")
def setfit_version_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real SetFit model (packaged MiniLM body) trained briefly on 8 tweets per label.

    Trained once per session; tests copy the registry rather than train again.
    """
    from loop.classification.base import ClassifierConfig
    from loop.classification.setfit import SetFitFactory
    from loop.training.seed import train_and_publish

    root = tmp_path_factory.mktemp("setfit-registry")
    registry = ModelRegistry(root)
    config = ClassifierConfig(num_iterations=2, batch_size=16)
    train_and_publish(tweets(per_label=8), SetFitFactory(), registry, config, promote=True)
    return root


@pytest.fixture
def setfit_registry(setfit_version_dir: Path, tmp_path: Path) -> Iterator[ModelRegistry]:
    """A private copy of a registry whose promoted version v0001 is a real SetFit model."""
    root = tmp_path / "registry"
    shutil.copytree(setfit_version_dir, root)
    yield ModelRegistry(root)
