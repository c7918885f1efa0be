"""``alloop ingest``: every good line is published, every bad one reported as file:line."""

from __future__ import annotations

import io
from pathlib import Path

from connectors.ingest import publish
from loop.messages import Document, decode
from loop.readers import read_documents


class Acknowledged:
    def get(self, timeout: float) -> None:
        pass


class FakeProducer:
    """Acknowledges every send at once."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    def send(self, topic: str, key: bytes, value: bytes) -> Acknowledged:
        self.sent.append((topic, key, value))
        return Acknowledged()

    def flush(self) -> None:
        pass


def test_a_csv_line_that_is_not_utf8_is_reported_and_the_rest_published(tmp_path: Path) -> None:
    path = tmp_path / "docs.csv"
    path.write_bytes(b"\xef\xbb\xbfid,text\nr1,first\nr2,caf\xe9\nr3,third\n")  # BOM, then Latin-1
    producer, errors = FakeProducer(), io.StringIO()

    documents = read_documents(path)
    report = publish(documents, producer, "docs.raw", progress=False, errors=errors)  # type: ignore[arg-type]

    assert report.published == 2
    assert [decode(value, Document).id for _, _, value in producer.sent] == ["r1", "r3"]
    assert [key for _, key, _ in producer.sent] == [b"r1", b"r3"]
    assert [(r.source, r.line) for r in report.rejected] == [(str(path), 3)]
    assert f"{path}:3: not UTF-8" in errors.getvalue()
