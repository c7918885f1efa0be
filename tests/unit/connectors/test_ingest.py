"""``alloop ingest``: every good line is published, every bad one reported as file:line."""

from __future__ import annotations

import io
from pathlib import Path

from connectors.ingest import publish
from loop.messages import Document
from loop.readers import read_documents
from loop.testing.bus import MemoryBus


def test_a_csv_line_that_is_not_utf8_is_reported_and_the_rest_published(tmp_path: Path) -> None:
    path = tmp_path / "docs.csv"
    path.write_bytes(b"\xef\xbb\xbfid,text\nr1,first\nr2,caf\xe9\nr3,third\n")  # BOM, then Latin-1
    bus, errors = MemoryBus(), io.StringIO()

    documents = read_documents(path)
    report = publish(documents, bus.producer(), "docs.raw", progress=False, errors=errors)  # type: ignore[arg-type]

    assert report.published == 2
    assert [d.id for d in bus.messages("docs.raw", Document)] == ["r1", "r3"]
    assert [r.key for r in bus.records("docs.raw")] == [b"r1", b"r3"]
    assert [(r.source, r.line) for r in report.rejected] == [(str(path), 3)]
    assert f"{path}:3: not UTF-8" in errors.getvalue()
