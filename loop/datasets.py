"""The labelled datasets shipped beside the project (``../shared/datasets``) that the demo,
the tests and the benchmarks read: the financial tweets, and picking a few per label."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from loop.messages import Document
from loop.readers import Columns, Rejected, read_documents

TWEET_LABELS = {"0": "Bearish", "1": "Bullish", "2": "Neutral"}
DEFAULT_DATASET = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "datasets"
    / ("twitter_financial_news_sentiment")
)


def take_per_label(documents: Sequence[Document], per_label: int) -> list[Document]:
    """The first ``per_label`` documents of each label, in input order (a document with a
    label set is taken while one of its labels is short of examples)."""
    taken: list[Document] = []
    counts: Counter[str] = Counter()
    for doc in documents:
        names = doc.labels if doc.labels is not None else [doc.label] if doc.label else []
        if any(counts[name] < per_label for name in names):
            counts.update(names)
            taken.append(doc)
    return taken


def read_tweets(dataset: Path) -> list[Document]:
    columns = Columns(label_names=TWEET_LABELS)
    docs: dict[str, Document] = {}
    for name in ("sent_train.csv", "sent_valid.csv"):
        for item in read_documents(dataset / name, columns):
            if not isinstance(item, Rejected):
                docs.setdefault(item.id, item)
    return list(docs.values())
