"""``alloop ingest``: publish documents from files to ``docs.raw``, keyed by document id."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TextIO

from kafka import KafkaProducer
from tqdm import tqdm

from connectors.outputs import encode_key
from loop.messages import Document, encode
from loop.readers import Rejected

logger = logging.getLogger(__name__)


@dataclass
class IngestReport:
    published: int = 0
    rejected: list[Rejected] = field(default_factory=list)


def publish(
    items: Iterable[Document | Rejected],
    producer: KafkaProducer,
    topic: str,
    *,
    progress: bool = True,
    errors: TextIO = sys.stderr,
    max_reported: int = 50,
) -> IngestReport:
    """Send every document and report every rejected line; wait for all acknowledgements."""
    report = IngestReport()
    futures = []
    bar = tqdm(unit=" docs", desc=f"→ {topic}", disable=not progress, file=sys.stderr)
    try:
        for item in items:
            if isinstance(item, Rejected):
                report.rejected.append(item)
                if len(report.rejected) <= max_reported:
                    where = f"{item.source}:{item.line}" if item.line else item.source
                    bar.write(f"rejected {where}: {item.reason}", file=errors)
                continue
            futures.append(producer.send(topic, key=encode_key(item.id), value=encode(item)))
            bar.update()
        producer.flush()
        for future in futures:
            future.get(timeout=60)
        report.published = len(futures)
    finally:
        bar.close()
    hidden = len(report.rejected) - max_reported
    if hidden > 0:
        print(f"... and {hidden} more rejected lines", file=errors)
    return report
