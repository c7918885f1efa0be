"""The entity-extractor contract: spans with scores, near misses, a factory per kind.

Everything here is light (no torch, no spaCy), so the scorer, the selector and the API can
handle spans without loading a model library. Implementations live beside this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from loop.errors import ModelError


class SpanError(ModelError):
    """A span does not fit its text (offsets out of range, or its text does not match)."""


MODEL = "model"
"""Source of a span the served version predicted."""
GAZETTEER = "gazetteer"
"""Source of a pattern match of a gazetteer entry: a currency pair, a coin, a listed ticker."""
PATTERN = "pattern"
"""Source of a pattern match that no gazetteer lists (a cashtag of an unlisted ticker)."""


@dataclass(frozen=True, order=True)
class Span:
    """An entity mention: ``text[start:end]`` is the surface form, typed ``label``.

    Offsets are Python string indices (Unicode code points), end exclusive, so
    ``document[span.start:span.end] == span.text`` holds for every valid span.
    """

    start: int
    """Offset of the first character."""
    end: int
    """Offset one past the last character."""
    label: str
    """The entity type, e.g. ``FOREX`` or ``person``."""
    text: str
    """The surface form, exactly ``document[start:end]``."""
    score: float = 1.0
    """Confidence in [0, 1] that this span with this type is an entity (1.0 for gold spans)."""
    source: str = field(default="", compare=False)
    """Where it came from: :data:`MODEL`, :data:`GAZETTEER` or :data:`PATTERN`; empty for
    gold spans and a model's own output until it is served (:mod:`loop.entities.merge`).
    Not compared: two spans with the same offsets, type and score are equal."""

    def check(self, document: str) -> None:
        """Raise :class:`SpanError` unless this span lies in ``document`` and matches it."""
        if not 0 <= self.start < self.end <= len(document):
            raise SpanError(
                f"span [{self.start}, {self.end}) is outside a text of {len(document)} characters"
            )
        if document[self.start : self.end] != self.text:
            raise SpanError(
                f"span [{self.start}, {self.end}) reads {document[self.start : self.end]!r}, "
                f"not {self.text!r}"
            )
        if not self.label:
            raise SpanError(f"span {self.text!r} has no label")

    @property
    def key(self) -> tuple[int, int, str]:
        """What strict span matching compares: offsets and type, not the score."""
        return (self.start, self.end, self.label)


def make_span(document: str, start: int, end: int, label: str, score: float = 1.0) -> Span:
    """A span of ``document`` whose text is taken from the document itself."""
    span = Span(start, end, label, document[start:end], score)
    span.check(document)
    return span


def overlap(a: Span, b: Span) -> bool:
    """Whether two spans share at least one character."""
    return a.start < b.end and b.start < a.end


def best_first(span: Span) -> tuple[float, int, int]:
    """Rank of a span among overlapping ones: higher score, then longer, then earlier."""
    return (-span.score, span.start - span.end, span.start)


def keep_apart(spans: Iterable[Span], key: Callable[[Span], Any] = best_first) -> list[Span]:
    """The spans that overlap none ranked before them by ``key``, sorted by offset."""
    kept: list[Span] = []
    for span in sorted(spans, key=key):
        if not any(overlap(span, k) for k in kept):
            kept.append(span)
    return sorted(kept)


@dataclass(frozen=True)
class Example:
    """A training example: a text and all its gold entity spans (none is a valid answer)."""

    text: str
    spans: tuple[Span, ...] = ()

    def check(self) -> None:
        """Raise :class:`SpanError` if a span does not fit the text or two spans overlap."""
        previous: Span | None = None
        for span in sorted(self.spans):
            span.check(self.text)
            if previous is not None and span.start < previous.end:
                raise SpanError(f"spans {previous.text!r} and {span.text!r} overlap")
            previous = span


@dataclass(frozen=True)
class ExtractorConfig:
    """Hyperparameters of an entity extractor, stored beside every version trained with them.

    Each implementation reads the fields that apply to it; the defaults fit a 2-core CPU and
    about 1,000 sentences in a few minutes.
    """

    types: tuple[str, ...] = ()
    """Entity types to learn; empty means every type found in the training examples."""
    epochs: int = 10
    """Passes over the training examples (an upper bound when ``time_budget_s`` is set)."""
    min_steps: int = 60
    """Optimisation steps at least (transformer tagger): a few dozen labelled sentences get
    more passes than ``epochs``, still within ``time_budget_s``."""
    batch_size: int = 16
    """Examples per optimisation step."""
    learning_rate: float = 1e-4
    """Optimiser learning rate (transformer tagger; spaCy uses its own schedule)."""
    dropout: float = 0.1
    """Dropout while training (spaCy's ``drop``)."""
    max_length: int = 128
    """Subword tokens per text for the transformer tagger; longer texts are cut into windows."""
    threshold: float = 0.5
    """A span is predicted when its score reaches this; near misses lie below it."""
    quantize: bool = False
    """Transformer tagger: tag with an int8 copy of its linear layers (PyTorch dynamic
    quantization), faster on a CPU (1.3 times bfloat16, 1.9 times float32 on WNUT-17) but
    with lower recall; training and the saved weights stay float32."""
    bfloat16: bool = True
    """Transformer tagger: tag faster than float32 where the CPU allows. The tagger itself
    (evaluations, benchmarks) tags in bfloat16 (autocast) on a CPU that computes it in
    hardware (AVX512-BF16 or AMX): about 1.5 times faster than float32 on WNUT-17 at the same
    F1, span scores within about 0.01 (docs/entities.md). The scorer and the API serve it in
    ``ALLOOP_PRECISION`` (``auto``: int8 where the CPU has VNNI). False, with ``quantize``,
    and always in training: float32."""
    near_miss_floor: float = 0.1
    """Near misses scoring below this are not reported."""
    time_budget_s: float | None = None
    """Stop training before the first batch that would start after this many seconds."""
    seed: int = 42
    """Seed for shuffling and initialisation."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Implementation-specific options, recorded as they were given."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["types"] = list(self.types)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExtractorConfig:
        known = set(cls.__dataclass_fields__)
        values = {key: value for key, value in data.items() if key in known}
        if "types" in values:
            values["types"] = tuple(values["types"])
        return cls(**values)


@runtime_checkable
class EntityExtractor(Protocol):
    """A trained entity extractor."""

    @property
    def types(self) -> list[str]:
        """Entity types this extractor can predict."""
        ...

    def predict(self, texts: Sequence[str], batch_size: int = 32) -> list[list[Span]]:
        """The spans predicted in each text, sorted by offset, each with its score."""
        ...

    def near_misses(self, texts: Sequence[str], batch_size: int = 32) -> list[list[Span]]:
        """Spans each text almost got: score at least ``near_miss_floor`` but below the
        threshold. Selection ranks documents by these; they are never tags."""
        ...

    def save(self, path: Path) -> None:
        """Write the extractor to a new folder ``path`` in its library's own format."""
        ...


def analyse(
    extractor: EntityExtractor, texts: Sequence[str], batch_size: int = 32
) -> list[tuple[list[Span], list[Span]]]:
    """Predicted spans and near misses of each text, in one pass when the extractor offers
    one (``analyse``), else through :meth:`~EntityExtractor.predict` and
    :meth:`~EntityExtractor.near_misses`."""
    one_pass = getattr(extractor, "analyse", None)
    if callable(one_pass):
        result: list[tuple[list[Span], list[Span]]] = one_pass(texts, batch_size)
        return result
    predicted = extractor.predict(texts, batch_size)
    missed = extractor.near_misses(texts, batch_size)
    return list(zip(predicted, missed, strict=True))


class OnePassExtractor:
    """For extractors that find spans and near misses in one pass: ``predict`` and
    ``near_misses`` of the :class:`EntityExtractor` contract from their ``analyse``."""

    def analyse(
        self, texts: Sequence[str], batch_size: int = 32
    ) -> list[tuple[list[Span], list[Span]]]:
        raise NotImplementedError

    def predict(self, texts: Sequence[str], batch_size: int = 32) -> list[list[Span]]:
        return [spans for spans, _ in self.analyse(texts, batch_size)]

    def near_misses(self, texts: Sequence[str], batch_size: int = 32) -> list[list[Span]]:
        return [misses for _, misses in self.analyse(texts, batch_size)]


def surface_form(text: str) -> str:
    """How surface forms are compared for "seen before": case-folded, inner spaces single."""
    return " ".join(text.casefold().split())


class ExtractorFactory(Protocol):
    """Trains a fresh extractor for each training run and loads saved ones."""

    name: str

    def train(self, examples: Sequence[Example], config: ExtractorConfig) -> EntityExtractor: ...

    def load(self, path: Path) -> EntityExtractor: ...


def entity_types(examples: Sequence[Example], config: ExtractorConfig) -> list[str]:
    """The types to learn: the config's, else those in the examples, sorted."""
    if config.types:
        return list(config.types)
    found = sorted({span.label for example in examples for span in example.spans})
    if not found:
        raise ModelError("the training examples hold no entity spans and no types were given")
    return found


def check_examples(examples: Sequence[Example], types: Sequence[str]) -> None:
    """Raise :class:`SpanError` for the first example whose spans are invalid or untyped."""
    known = set(types)
    for index, example in enumerate(examples):
        try:
            example.check()
        except SpanError as exc:
            raise SpanError(f"example {index}: {exc}") from exc
        for span in example.spans:
            if span.label not in known:
                raise SpanError(f"example {index}: type {span.label!r} is not in {sorted(known)}")


def ensure_empty_folder(path: Path) -> None:
    """Model folders are written once: refuse a folder that already holds files."""
    if path.exists() and any(path.iterdir()):
        raise ModelError(f"{path} exists and is not empty; model folders are written once")
