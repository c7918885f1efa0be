"""Tagging speed of the MiniLM tagger, every way of running it, on one saved model.

One trained tagger (saved by ``--model``, or trained first on the first ``--train-size``
sentences with bench.ner_compare's settings and saved there) tags the test sentences with
each variant, round after round in one process, so the variants share the machine's load;
the best and median round of each are reported, with strict F1 and how many texts get
exactly the spans of the float32 tagger.

    .venv/bin/python -m bench.ner_speed --model /tmp/wnut17-tagger --rounds 5

Variants: the float32 tagger as it batched before (by characters, one tokenizer call per
batch, per-token dict merging), float32, bfloat16 (the default where the CPU has it), int8
(``quantize``), and, when onnxruntime is installed (it is not a dependency), the same float32
weights exported to ONNX (and int8 by onnxruntime's dynamic quantization, which needs the
onnx package too). The last line printed is a JSON object with every figure.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.ner_compare import DATA, OVERRIDES, data_arguments, emit, machine
from loop.embeddings.precision import Precision
from loop.entities.base import ExtractorConfig, Span
from loop.entities.conll import read_examples
from loop.entities.decoding import TokenScores, decode
from loop.entities.metrics import micro, span_counts
from loop.entities.transformer_tagger import (
    TransformerTagger,
    TransformerTaggerFactory,
)

Variant = Callable[[Sequence[str]], list[list[Span]]]


def before(tagger: TransformerTagger, batch_size: int) -> Variant:
    """The float32 tagger as it ran before: batches of texts sorted by characters, padded to
    the longest of each batch, and per-token dict merging."""

    def score_batch(texts: list[str]) -> list[TokenScores]:
        encoded = tagger.encode_windows(texts, padding=True, return_tensors="pt")
        owners = encoded["overflow_to_sample_mapping"].tolist()
        offsets = encoded["offset_mapping"].tolist()
        mask = encoded["attention_mask"].tolist()
        with torch.inference_mode():
            logits = tagger._model(
                input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"]
            ).logits
        probs = torch.softmax(logits.float(), dim=-1).numpy()
        merged: list[dict[tuple[int, int], np.ndarray]] = [{} for _ in texts]
        for row, owner in enumerate(owners):
            for column, (start, end) in enumerate(offsets[row]):
                if mask[row][column] and start < end:
                    merged[owner].setdefault((start, end), probs[row, column])
        scores = []
        for tokens in merged:
            keys = sorted(tokens)
            rows = np.stack([tokens[k] for k in keys]) if keys else np.zeros((0, 1), np.float32)
            scores.append(TokenScores(keys, rows.astype(np.float32)))
        return scores

    def run(texts: Sequence[str]) -> list[list[Span]]:
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        results: list[list[Span]] = [[] for _ in texts]
        for first in range(0, len(order), batch_size):
            chunk = order[first : first + batch_size]
            for i, tokens in zip(chunk, score_batch([texts[i] for i in chunk]), strict=True):
                results[i] = decode(
                    texts[i],
                    tokens,
                    tagger.types,
                    tagger.config.threshold,
                    tagger.config.near_miss_floor,
                )[0]
        return results

    return run


class OnnxTagger(TransformerTagger):
    """The tagger with its encoder run by onnxruntime on an ONNX export of the same weights."""

    def __init__(self, tagger: TransformerTagger, folder: Path, int8: bool = False) -> None:
        import onnxruntime as ort

        super().__init__(
            tagger._model, tagger._tokenizer, tagger.types, replace(tagger.config, bfloat16=False)
        )
        path = folder / "tagger.onnx"
        if not path.exists():
            export_onnx(tagger, path)
        if int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantized = folder / "tagger-int8.onnx"
            quantize_dynamic(path, quantized, per_channel=True, weight_type=QuantType.QInt8)
            path = quantized
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor) -> Any:
        feed = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
        logits = torch.from_numpy(self._session.run(["logits"], feed)[0])
        return torch.softmax(logits, dim=-1).numpy()


class _Logits(torch.nn.Module):
    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Any:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


def export_onnx(tagger: TransformerTagger, path: Path) -> None:
    """The float32 tagger as an ONNX graph with dynamic batch and sequence axes."""
    sample = tagger._tokenizer(["a longer sample text, padded", "short"], padding=True)
    ids = torch.tensor(sample["input_ids"])
    mask = torch.tensor(sample["attention_mask"])
    axes = {0: "batch", 1: "tokens"}
    torch.onnx.export(
        _Logits(tagger._model).eval(),
        (ids, mask),
        str(path),
        input_names=["input_ids", "attention_mask"],
        output_names=["logits"],
        dynamic_axes={"input_ids": axes, "attention_mask": axes, "logits": axes},
        opset_version=17,
        dynamo=False,
    )


def variants(tagger: TransformerTagger, folder: Path, batch_size: int) -> dict[str, Variant]:
    def tagging(variant: TransformerTagger) -> Variant:
        return lambda texts: variant.predict(texts, batch_size)

    def config(**changes: Any) -> ExtractorConfig:
        return replace(tagger.config, **changes)

    found: dict[str, Variant] = {
        "float32, as before (batches by characters)": before(tagger, batch_size),
        "float32": tagging(
            TransformerTagger(
                tagger._model, tagger._tokenizer, tagger.types, config(bfloat16=False)
            )
        ),
    }
    bf16 = TransformerTagger(tagger._model, tagger._tokenizer, tagger.types, config(bfloat16=True))
    if bf16.precision is Precision.BFLOAT16:
        found["bfloat16 (default here)"] = tagging(bf16)
    per_token = TransformerTagger(
        tagger._model, tagger._tokenizer, tagger.types, config(bfloat16=False)
    )
    per_token.serve_in(Precision.INT8)
    found["int8, per token (ALLOOP_PRECISION=int8)"] = tagging(per_token)
    found["int8, torch dynamic quantization (quantize)"] = tagging(
        TransformerTagger(tagger._model, tagger._tokenizer, tagger.types, config(quantize=True))
    )
    try:
        found["float32, onnxruntime"] = tagging(OnnxTagger(tagger, folder))
    except ImportError:
        logging.info("onnxruntime is not installed: no ONNX variants")
        return found
    try:
        found["int8, onnxruntime per-channel"] = tagging(OnnxTagger(tagger, folder, int8=True))
    except ImportError:
        logging.info("onnx is not installed: no onnxruntime int8 variant")
    return found


def run(
    model: Path,
    train: Path = DATA / "wnut17train.conll",
    test: Path = DATA / "emerging.test.annotated",
    train_size: int = 1000,
    rounds: int = 5,
    batch_size: int = 32,
) -> dict[str, Any]:
    factory = TransformerTaggerFactory()
    if not model.exists():
        config = replace(ExtractorConfig(time_budget_s=240.0), **OVERRIDES["minilm-tagger"])
        factory.train(read_examples(train)[:train_size], config).save(model)
    tagger = factory.load(model)
    examples = read_examples(test)
    texts = [example.text for example in examples]
    gold = [list(example.spans) for example in examples]
    with tempfile.TemporaryDirectory() as folder:
        ways = variants(tagger, Path(folder), batch_size)
        predicted = {name: way(texts) for name, way in ways.items()}  # warm-up
        wall: dict[str, list[float]] = {name: [] for name in ways}
        cpu: dict[str, list[float]] = {name: [] for name in ways}
        load_before = os.getloadavg()
        for _ in range(rounds):
            for name, way in ways.items():
                began, began_cpu = time.perf_counter(), time.process_time()
                predicted[name] = way(texts)
                wall[name].append(time.perf_counter() - began)
                cpu[name].append(time.process_time() - began_cpu)
        load_after = os.getloadavg()
    reference = predicted["float32"]
    results: dict[str, Any] = {
        "model": str(model),
        "test_sentences": len(texts),
        "rounds": rounds,
        "batch_size": batch_size,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "machine": machine(),
        "variants": {},
    }
    for name, spans in predicted.items():
        scores = micro(span_counts(gold, spans).values())
        drift = [
            abs(a.score - b.score)
            for old, new in zip(reference, spans, strict=True)
            if [s.key for s in old] == [s.key for s in new]
            for a, b in zip(old, new, strict=True)
        ]
        results["variants"][name] = {
            "best_sentences_per_s": round(len(texts) / min(wall[name]), 1),
            "median_sentences_per_s": round(len(texts) / statistics.median(wall[name]), 1),
            "best_cpu_s": round(min(cpu[name]), 2),
            "f1": round(scores.f1, 4),
            "precision": round(scores.precision, 4),
            "recall": round(scores.recall, 4),
            "texts_with_float32_spans": sum(
                [s.key for s in old] == [s.key for s in new]
                for old, new in zip(reference, spans, strict=True)
            ),
            "largest_score_difference": round(max(drift, default=0.0), 6),
        }
    return results


def table(results: dict[str, Any]) -> str:
    lines = [
        "| variant | sentences/s best | median | CPU s | F1 | P | R | texts as float32 | "
        "largest score change |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in results["variants"].items():
        lines.append(
            f"| {name} | {row['best_sentences_per_s']} | {row['median_sentences_per_s']} "
            f"| {row['best_cpu_s']} | {row['f1']:.3f} | {row['precision']:.3f} "
            f"| {row['recall']:.3f} | {row['texts_with_float32_spans']}/"
            f"{results['test_sentences']} | {row['largest_score_difference']:.4f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="alloop bench ner-speed",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("--model", type=Path, required=True, help="saved tagger (made if absent)")
    data_arguments(parser)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    results = run(args.model, args.train, args.test, args.train_size, args.rounds, args.batch_size)
    emit(results, table(results), args.json)


if __name__ == "__main__":
    main()
