"""Compare entity-extractor candidates on the same data and time budget.

Each candidate is trained on the same first ``train_size`` sentences (of a CoNLL or JSONL
file), with the same time budget, in this process, one after the other; then tags the test
set with the same batch size. Reported: training time, tagging speed, strict span-level
precision/recall/F1 (micro and per type), and recall on test entities whose surface form
never appeared in the training sentences.

    .venv/bin/python -m bench.ner_compare --train ../shared/datasets/wnut17/wnut17train.conll \\
        --test ../shared/datasets/wnut17/emerging.test.annotated

The last line printed is a JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from loop.entities.base import ExtractorConfig
from loop.entities.conll import read_examples
from loop.entities.factories import factory_for
from loop.entities.metrics import micro, span_counts, unseen_recall

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "wnut17"
CANDIDATES = ("minilm-tagger", "spacy-ner")

# Per-candidate settings; the shared time budget stops training whichever comes first.
# The fine-tuned encoder needs a higher learning rate than BERT's usual 5e-5 to learn
# anything from 1,000 sentences in the few epochs the budget allows on 2 cores.
OVERRIDES: dict[str, dict[str, Any]] = {
    "minilm-tagger": {"epochs": 8, "learning_rate": 3e-4},
    "spacy-ner": {"epochs": 50},
}


def run(
    train: Path = DATA / "wnut17train.conll",
    test: Path = DATA / "emerging.test.annotated",
    candidates: Sequence[str] = CANDIDATES,
    train_size: int = 1000,
    time_budget_s: float = 240.0,
    batch_size: int = 32,
    seed: int = 42,
) -> dict[str, Any]:
    """Train and score every candidate; returns the figures as a JSON-ready dict."""
    train_examples = read_examples(train)[:train_size]
    test_examples = read_examples(test)
    seen = {span.text.casefold() for example in train_examples for span in example.spans}
    gold = [list(example.spans) for example in test_examples]
    texts = [example.text for example in test_examples]
    base = ExtractorConfig(time_budget_s=time_budget_s, seed=seed)
    results: dict[str, Any] = {
        "train": str(train),
        "test": str(test),
        "train_sentences": len(train_examples),
        "train_entities": sum(len(example.spans) for example in train_examples),
        "test_sentences": len(test_examples),
        "test_entities": sum(len(spans) for spans in gold),
        "time_budget_s": time_budget_s,
        "batch_size": batch_size,
        "machine": machine(),
        "candidates": {},
    }
    for name in candidates:
        config = replace(base, **OVERRIDES.get(name, {}))
        began = time.monotonic()
        extractor = factory_for(name).train(train_examples, config)
        train_s = time.monotonic() - began
        extractor.predict(texts[:batch_size], batch_size=batch_size)  # warm-up
        began = time.monotonic()
        predicted = extractor.predict(texts, batch_size=batch_size)
        tag_s = time.monotonic() - began
        counts = span_counts(gold, predicted)
        recall_unseen, unseen = unseen_recall(gold, predicted, seen)
        results["candidates"][name] = {
            "config": config.to_dict(),
            "train_s": round(train_s, 1),
            "sentences_per_s": round(len(texts) / tag_s, 1),
            "micro": micro(counts.values()).as_dict(),
            "per_type": {label: c.as_dict() for label, c in counts.items()},
            "unseen_recall": round(recall_unseen, 4),
            "unseen_entities": unseen,
        }
    return results


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    import torch

    from loop.embeddings.precision import native_bfloat16

    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "bfloat16_in_hardware": native_bfloat16(),
        "load_average_1m_at_end": load,
        "python": platform.python_version(),
    }


def table(results: dict[str, Any]) -> str:
    """The comparison as a Markdown table."""
    lines = [
        "| candidate | train s | sentences/s | P | R | F1 | unseen R |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in results["candidates"].items():
        m = row["micro"]
        lines.append(
            f"| {name} | {row['train_s']} | {row['sentences_per_s']} | {m['precision']:.3f} "
            f"| {m['recall']:.3f} | {m['f1']:.3f} | {row['unseen_recall']:.3f} |"
        )
    types = sorted({t for row in results["candidates"].values() for t in row["per_type"]})
    lines += ["", "| type | " + " | ".join(results["candidates"]) + " |"]
    lines.append("|---|" + "---:|" * len(results["candidates"]))
    for name in types:
        cells = []
        for row in results["candidates"].values():
            c = row["per_type"].get(name, {"f1": 0.0, "support": 0})
            cells.append(f"F1 {c['f1']:.3f} (n={c['support']})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def data_arguments(parser: argparse.ArgumentParser) -> None:
    """The options both entity benchmarks take: the WNUT-17 files (or others), how many
    training sentences, the batch size, and where to write the figures too."""
    parser.add_argument("--train", type=Path, default=DATA / "wnut17train.conll")
    parser.add_argument("--test", type=Path, default=DATA / "emerging.test.annotated")
    parser.add_argument("--train-size", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")


def emit(results: dict[str, Any], text: str, path: Path | None) -> None:
    """Write the figures to ``path`` (when given), print ``text`` (their table), then the
    figures as one JSON line: the last line a script reads."""
    if path is not None:
        path.write_text(json.dumps(results, indent=2))
    print(text)
    print(json.dumps(results))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    data_arguments(parser)
    parser.add_argument("--candidates", default=",".join(CANDIDATES))
    parser.add_argument("--time-budget", type=float, default=240.0)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    results = run(
        args.train,
        args.test,
        [c for c in args.candidates.split(",") if c],
        args.train_size,
        args.time_budget,
        args.batch_size,
        args.seed,
    )
    emit(results, table(results), args.json)


if __name__ == "__main__":
    main()
