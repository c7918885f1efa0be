from __future__ import annotations

from pathlib import Path

import pytest

from loop.entities.base import EntityExtractor, Example, ExtractorConfig
from loop.entities.factories import KINDS, factory_for
from loop.errors import ModelError


def test_the_fake_has_the_real_contract_and_exact_unicode_offsets(edges: list[Example]) -> None:
    extractor = factory_for("gazetteer").train(edges, ExtractorConfig())
    assert isinstance(extractor, EntityExtractor)
    texts = [e.text for e in edges]
    predicted = extractor.predict(texts)
    assert [[s.key for s in spans] for spans in predicted] == [
        [s.key for s in e.spans] for e in edges
    ]
    assert all(
        t[s.start : s.end] == s.text
        for t, spans in zip(texts, predicted, strict=True)
        for s in spans
    )


def test_save_and_load_give_the_same_predictions(edges: list[Example], tmp_path: Path) -> None:
    extractor = factory_for("gazetteer").train(edges, ExtractorConfig())
    extractor.save(tmp_path / "m")
    loaded = factory_for("gazetteer").load(tmp_path / "m")
    texts = [e.text for e in edges] + ["nothing here"]
    assert loaded.predict(texts) == extractor.predict(texts)
    with pytest.raises(ModelError, match="not empty"):
        extractor.save(tmp_path / "m")


def test_unknown_kinds_are_refused() -> None:
    assert "spacy-ner" in KINDS
    with pytest.raises(ModelError, match="unknown extractor kind"):
        factory_for("crf")
