"""The real extractors, trained on a few short texts: exact offsets and save/load.

Each trains in well under a minute on 2 CPU cores. They learn the training texts by heart,
which is what these tests need: entities at the very start and end of Unicode texts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from loop.entities.base import EntityExtractor, Example, ExtractorConfig
from loop.entities.factories import factory_for

CONFIGS = {
    "spacy-ner": ExtractorConfig(epochs=25, batch_size=8, dropout=0.0),
    "minilm-tagger": ExtractorConfig(epochs=9, batch_size=8, learning_rate=5e-4),
}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def trained(
    request: pytest.FixtureRequest, edges: list[Example]
) -> tuple[str, EntityExtractor, list[Example]]:
    pytest.importorskip("spacy" if request.param == "spacy-ner" else "transformers")
    return request.param, factory_for(request.param).train(edges, CONFIGS[request.param]), edges


def test_offsets_are_exact_at_the_edges_of_unicode_texts(
    trained: tuple[str, EntityExtractor, list[Example]],
) -> None:
    _, extractor, examples = trained
    assert isinstance(extractor, EntityExtractor)
    texts = [e.text for e in examples]
    predicted = extractor.predict(texts)
    for text, spans in zip(texts, predicted, strict=True):
        for span in spans:
            assert text[span.start : span.end] == span.text
            assert 0.0 <= span.score <= 1.0
    exact = sum(
        {s.key for s in spans} == {s.key for s in e.spans}
        for spans, e in zip(predicted, examples, strict=True)
    )
    assert exact >= 0.9 * len(examples), [p for p in predicted[:4]]
    starts = {spans[0].start for spans in predicted if spans}
    assert starts == {0}
    assert any(spans and spans[-1].end == len(t) for t, spans in zip(texts, predicted, strict=True))


def test_near_misses_are_below_the_threshold(
    trained: tuple[str, EntityExtractor, list[Example]],
) -> None:
    _, extractor, _ = trained
    texts = ["Zurich ist schön 😀 sagt Jurgen", "Paris est belle, dit Marie"]
    for text, misses in zip(texts, extractor.near_misses(texts), strict=True):
        for miss in misses:
            assert text[miss.start : miss.end] == miss.text
            assert miss.score < 0.5


def test_save_and_load_give_the_same_predictions(
    trained: tuple[str, EntityExtractor, list[Example]], tmp_path: Path
) -> None:
    kind, extractor, examples = trained
    extractor.save(tmp_path / "model")
    loaded = factory_for(kind).load(tmp_path / "model")
    texts = [e.text for e in examples[:6]] + ["Kraków 🙂 ok, per Renée", "nothing"]
    before, after = extractor.predict(texts), loaded.predict(texts)
    assert [[s.key for s in p] for p in after] == [[s.key for s in p] for p in before]
    for old, new in zip(before, after, strict=True):
        for a, b in zip(old, new, strict=True):
            assert b.score == pytest.approx(a.score, abs=1e-4)
    assert loaded.types == extractor.types


@pytest.mark.parametrize("trained", ["minilm-tagger"], indirect=True)
def test_the_quantized_tagger_keeps_exact_offsets_and_saves_float_weights(
    trained: tuple[str, EntityExtractor, list[Example]], tmp_path: Path
) -> None:
    kind, extractor, examples = trained
    from dataclasses import replace

    from loop.entities.transformer_tagger import TransformerTagger

    assert isinstance(extractor, TransformerTagger)
    quantized = TransformerTagger(
        extractor._model,
        extractor._tokenizer,
        extractor.types,
        replace(extractor.config, quantize=True),
    )
    texts = [e.text for e in examples]
    for text, spans in zip(texts, quantized.predict(texts), strict=True):
        for span in spans:
            assert text[span.start : span.end] == span.text
    quantized.save(tmp_path / "q")
    loaded = factory_for(kind).load(tmp_path / "q")
    assert isinstance(loaded, TransformerTagger) and loaded.config.quantize
    assert loaded._model.classifier.weight.dtype.is_floating_point, "saved weights are float"
