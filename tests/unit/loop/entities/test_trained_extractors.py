"""The real extractors, trained on a few short texts: exact offsets and save/load.

Each trains in well under a minute on 2 CPU cores. They learn the training texts by heart,
which is what these tests need: entities at the very start and end of Unicode texts.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from loop.entities.base import EntityExtractor, Example, ExtractorConfig
from loop.entities.decoding import TokenScores
from loop.entities.factories import factory_for

if TYPE_CHECKING:
    from loop.entities.transformer_tagger import TransformerTagger

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


def one_text_at_a_time(tagger: TransformerTagger, text: str) -> TokenScores:
    """The reference: each window of ``text`` through the float32 model on its own (no
    padding), tokens merged as a dict where the first window that holds a token wins."""
    import torch

    encoded = tagger.encode_windows(text)
    tokens: dict[tuple[int, int], np.ndarray] = {}
    for ids, offsets in zip(encoded["input_ids"], encoded["offset_mapping"], strict=True):
        with torch.inference_mode():
            logits = tagger._model(input_ids=torch.tensor([ids])).logits[0]
        probs = torch.softmax(logits, dim=-1).numpy()
        for column, (start, end) in enumerate(offsets):
            if start < end:
                tokens.setdefault((start, end), probs[column])
    keys = sorted(tokens)
    tags = len(tagger._model.config.id2label)
    rows = [tokens[key] for key in keys]
    return TokenScores(keys, np.stack(rows) if rows else np.zeros((0, tags), np.float32))


def tagger_variant(tagger: TransformerTagger, **changes: Any) -> TransformerTagger:
    from loop.entities.transformer_tagger import TransformerTagger

    config = replace(tagger.config, **changes)
    return TransformerTagger(tagger._model, tagger._tokenizer, tagger.types, config)


@pytest.mark.parametrize("trained", ["minilm-tagger"], indirect=True)
def test_batches_of_windows_score_tokens_as_one_text_at_a_time(
    trained: tuple[str, EntityExtractor, list[Example]],
) -> None:
    from loop.entities.transformer_tagger import TransformerTagger

    _, extractor, examples = trained
    assert isinstance(extractor, TransformerTagger)
    # Short windows, so that the long texts overflow into several overlapping ones; texts of
    # every length share batches, so most rows are padded.
    tagger = tagger_variant(extractor, max_length=40, bfloat16=False)
    texts = [e.text for e in examples[:8]]
    texts += [" ".join(e.text for e in examples[i : i + 10]) for i in (0, 7, 13)]
    texts += ["", "ok"]
    assert max(len(tagger._tokenizer(t)["input_ids"]) for t in texts) > 2 * 40
    for text, batched in zip(texts, tagger.token_scores(texts, batch_size=4), strict=True):
        alone = one_text_at_a_time(tagger, text)
        assert batched.offsets == alone.offsets, text
        assert np.allclose(batched.probs, alone.probs, atol=1e-5), text


@pytest.mark.parametrize("trained", ["minilm-tagger"], indirect=True)
@pytest.mark.parametrize("precision", ["float32", "bfloat16", "int8"])
def test_a_text_gets_the_same_bytes_whatever_else_is_in_its_batch(
    trained: tuple[str, EntityExtractor, list[Example]], precision: str
) -> None:
    """A replay tags a document in another batch than the first time; the tagger's numbers
    must not depend on the batch-mates, in any precision (bfloat16 emulated where the CPU
    lacks it)."""
    from loop.embeddings.precision import Precision
    from loop.entities.transformer_tagger import TransformerTagger

    _, extractor, examples = trained
    assert isinstance(extractor, TransformerTagger)
    tagger = tagger_variant(extractor, max_length=40)
    tagger.serve_in(Precision(precision))
    assert tagger.precision is Precision(precision)
    texts = [e.text for e in examples[:8]]
    texts += [" ".join(e.text for e in examples[i : i + 10]) for i in (0, 7)]
    together = tagger.token_scores(texts, batch_size=3)
    reversed_ = tagger.token_scores(texts[::-1], batch_size=5)[::-1]
    for text, mixed, backwards in zip(texts, together, reversed_, strict=True):
        alone = tagger.token_scores([text])[0]
        assert mixed.offsets == alone.offsets == backwards.offsets, text
        assert np.array_equal(mixed.probs, alone.probs), text
        assert np.array_equal(backwards.probs, alone.probs), text


@pytest.mark.parametrize("trained", ["minilm-tagger"], indirect=True)
@pytest.mark.parametrize("precision", ["bfloat16", "int8"])
def test_fast_tagging_gives_the_float32_spans(
    trained: tuple[str, EntityExtractor, list[Example]], precision: str
) -> None:
    from loop.embeddings.precision import Precision, native_bfloat16
    from loop.entities.transformer_tagger import TransformerTagger

    _, extractor, examples = trained
    assert isinstance(extractor, TransformerTagger)
    exact, fast = tagger_variant(extractor, bfloat16=False), tagger_variant(extractor)
    assert exact.precision is Precision.FLOAT32
    assert (fast.precision is Precision.BFLOAT16) == native_bfloat16()  # on where it is fast
    fast.serve_in(Precision(precision))  # and checked everywhere (bfloat16 may be emulated)
    if fast.precision is Precision.INT8:  # served through the recorded graph
        import torch

        assert isinstance(fast._serving_forward(), torch.jit.ScriptModule)
    texts = [e.text for e in examples] + ["Zurich ist schön 😀 sagt Jurgen", "Kraków 🙂 Renée"]
    (spans32, misses32), (spans16, misses16) = (
        list(zip(*t.analyse(texts), strict=True)) for t in (exact, fast)
    )
    assert [[s.key for s in p] for p in spans16] == [[s.key for s in p] for p in spans32]
    for old, new in zip(spans32, spans16, strict=True):
        for a, b in zip(old, new, strict=True):
            assert b.score == pytest.approx(a.score, abs=0.02)
    assert sum(map(len, misses16)) == pytest.approx(sum(map(len, misses32)), abs=2)
