"""spaCy's transition-based ``ner``, trained from scratch in a blank pipeline (no download).

A blank pipeline holds only a rule-based tokenizer, which ships with spaCy; the ``ner``
component learns its own hash-embedding CNN features from the training examples. Span
scores are beam marginals: the beam search keeps ``beam_width`` analyses of a text, and a
span's score is the probability mass of the analyses that contain it. Spans are widened to
whole tokens (:mod:`loop.entities.alignment`; spaCy's tokenizer splits ``$AAPL`` into ``$``
and ``AAPL``, ``BTC-USD`` into three), the best kept of those that become the same. Spans at
or above the threshold are predictions, the better of two that overlap; those between the
near-miss floor and the threshold are near misses. Saved with spaCy's ``to_disk``.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loop.entities.alignment import align
from loop.entities.base import (
    EntityExtractor,
    Example,
    ExtractorConfig,
    OnePassExtractor,
    Span,
    best_first,
    check_examples,
    ensure_empty_folder,
    entity_types,
    overlap,
)
from loop.errors import ModelError

logger = logging.getLogger(__name__)

META_FILE = "alloop_extractor.json"
DEFAULT_BEAM_WIDTH = 8
DEFAULT_LANGUAGE = "en"


class SpacyExtractor(OnePassExtractor):
    """A trained spaCy pipeline behind the :class:`EntityExtractor` contract."""

    def __init__(self, nlp: Any, types: list[str], config: ExtractorConfig) -> None:
        self._nlp = nlp
        self._types = types
        self.config = config
        self.beam_width = int(config.extra.get("beam_width", DEFAULT_BEAM_WIDTH))

    @property
    def types(self) -> list[str]:
        return list(self._types)

    def scored_spans(self, texts: Sequence[str], batch_size: int = 32) -> list[list[Span]]:
        """Every span the beam found in each text with its marginal probability, best first."""
        ner = self._nlp.get_pipe("ner")
        results: list[list[Span]] = []
        for first in range(0, len(texts), batch_size):
            chunk = list(texts[first : first + batch_size])
            docs = [self._nlp.make_doc(text) for text in chunk]
            nonempty = [doc for doc in docs if len(doc)]
            beams = ner.beam_parse(nonempty, beam_width=self.beam_width) if nonempty else []
            scores = iter(ner.scored_ents(beams))
            for text, doc in zip(chunk, docs, strict=True):
                found: list[Span] = []
                if len(doc):
                    for (start, end, label), prob in next(scores).items():
                        char_start, char_end = doc[start].idx, doc[end - 1].idx + len(doc[end - 1])
                        found.append(
                            Span(
                                char_start,
                                char_end,
                                str(label),
                                text[char_start:char_end],
                                round(min(1.0, float(prob)), 6),
                            )
                        )
                found.sort(key=lambda span: -span.score)
                results.append(found)
        return results

    def analyse(
        self, texts: Sequence[str], batch_size: int = 32
    ) -> list[tuple[list[Span], list[Span]]]:
        """Predicted spans and near misses of each text, in one pass of the pipeline."""
        split: list[tuple[list[Span], list[Span]]] = []
        for text, beam in zip(texts, self.scored_spans(texts, batch_size), strict=True):
            spans: list[Span] = []
            misses: list[Span] = []
            # Whole tokens ("AAPL" of "$AAPL" is "$AAPL"), best first: a weaker overlapping
            # span becomes a near miss.
            for span in sorted(align(text, beam), key=best_first):
                clash = any(overlap(span, kept) for kept in spans)
                if span.score >= self.config.threshold and not clash:
                    spans.append(span)
                elif self.config.near_miss_floor <= span.score < self.config.threshold:
                    misses.append(span)
            split.append((sorted(spans), sorted(misses)))
        return split

    def save(self, path: Path) -> None:
        ensure_empty_folder(path)
        self._nlp.to_disk(path)
        meta: dict[str, Any] = {"kind": SpacyNerFactory.name, "types": self._types}
        meta["config"] = self.config.to_dict()
        (path / META_FILE).write_text(json.dumps(meta, indent=2))


class SpacyNerFactory:
    """Trains :class:`SpacyExtractor` pipelines from scratch and loads saved ones."""

    name = "spacy-ner"

    def train(self, examples: Sequence[Example], config: ExtractorConfig) -> EntityExtractor:
        types = entity_types(examples, config)
        check_examples(examples, types)
        if not examples:
            raise ModelError("no training examples")
        import spacy
        from spacy.training import Example as SpacyExample
        from spacy.util import minibatch
        from thinc.api import compounding, fix_random_seed

        fix_random_seed(config.seed)
        nlp = spacy.blank(str(config.extra.get("language", DEFAULT_LANGUAGE)))
        ner: Any = nlp.add_pipe("ner")
        for name in types:
            ner.add_label(name)
        gold = [
            SpacyExample.from_dict(nlp.make_doc(example.text), {"entities": _aligned(nlp, example)})
            for example in examples
        ]
        optimizer = nlp.initialize(lambda: gold)
        order = random.Random(config.seed)
        began = time.monotonic()
        budget = config.time_budget_s
        out_of_time = False
        for epoch in range(config.epochs):
            order.shuffle(gold)
            losses: dict[str, float] = {}
            sizes = compounding(4.0, float(config.batch_size), 1.001)
            for batch in minibatch(gold, size=sizes):
                if budget is not None and time.monotonic() - began >= budget:
                    out_of_time = True
                    break
                nlp.update(batch, drop=config.dropout, sgd=optimizer, losses=losses)
            elapsed = time.monotonic() - began
            logger.info("epoch %d: loss %.1f, %.0f s", epoch + 1, losses.get("ner", 0.0), elapsed)
            if out_of_time:
                logger.info("time budget reached after %.0f s, in epoch %d", elapsed, epoch + 1)
                break
        return SpacyExtractor(nlp, types, config)

    def load(self, path: Path) -> SpacyExtractor:
        import spacy

        meta_file = path / META_FILE
        if not meta_file.is_file():
            raise ModelError(f"{path} holds no spaCy extractor ({META_FILE} missing)")
        try:
            meta = json.loads(meta_file.read_text())
            nlp = spacy.load(path)
        except Exception as exc:
            raise ModelError(f"cannot load the spaCy pipeline in {path}: {exc}") from exc
        return SpacyExtractor(nlp, list(meta["types"]), ExtractorConfig.from_dict(meta["config"]))


def _aligned(nlp: Any, example: Example) -> list[tuple[int, int, str]]:
    """Gold spans as spaCy entities, widened to token boundaries where the tokenizer cuts a
    span inside a token (logged: the model cannot learn that span exactly)."""
    doc = nlp.make_doc(example.text)
    entities: list[tuple[int, int, str]] = []
    for span in example.spans:
        aligned = doc.char_span(span.start, span.end, label=span.label)
        if aligned is None:
            aligned = doc.char_span(span.start, span.end, label=span.label, alignment_mode="expand")
            logger.warning("span %r is not on token boundaries; widened for spaCy", span.text)
        if aligned is not None:
            entities.append((aligned.start_char, aligned.end_char, span.label))
    return entities
