"""Which one-vs-rest head for multi-label classification: regularisation and class weights.

Embeds a labelled pool and a test set once with the packaged all-MiniLM-L6-v2 (the frozen body
of a head-only round), then fits one logistic regression per label for each ``C`` with and
without balanced class weights, and prints macro- and micro-F1 (label by label, a label applies
at probability 0.5). The default runs on NLU++ banking: folds 0 to 15 against folds 16 to 19.

    python -m bench.multilabel_head [--train F ...] [--test F ...] [--labels-column intents]
"""

from __future__ import annotations

import argparse
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.learning_curve import Model, read_task
from loop.classification.base import applying, multi_hot
from loop.classification.evaluation import Prediction, evaluate
from loop.readers import Columns

NLUPP = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "nlupp_banking"


def scores(
    head: Any, x: Any, y: Any, test_x: Any, gold: Sequence[Sequence[str]], names: list[str]
) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Label not .* present in all training")
        head.fit(x, y)
    probs = np.asarray(head.predict_proba(test_x))
    rows = [
        Prediction(id=str(i), gold=sorted(g), predicted=sorted(applying(names, row)))
        for i, (g, row) in enumerate(zip(gold, probs, strict=True))
    ]
    result = evaluate(rows, names, multi_label=True)
    return {"macro_f1": round(result.macro_f1, 3), "micro_f1": round(result.micro.f1, 3)}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.multilabel_head", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--train", type=Path, action="append", help="training file (repeat)")
    parser.add_argument("--test", type=Path, action="append", help="test file (repeat)")
    parser.add_argument("--labels-column", default="intents", help="field with the label set")
    parser.add_argument("--c", type=float, action="append", help="C values (default 1 4 16 64)")
    args = parser.parse_args(argv)
    train = args.train or [NLUPP / f"fold{i}.json" for i in range(16)]
    test = args.test or [NLUPP / f"fold{i}.json" for i in range(16, 20)]
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    pool, testset, names = read_task(train, test, Columns(labels=args.labels_column), True)
    model = Model.load(names, multi_label=True)
    x = model.embed([d.text for d in pool])
    test_x = model.embed([d.text for d in testset])
    y = multi_hot([d.labels or () for d in pool], names)
    gold = [d.labels or [] for d in testset]
    print(f"pool {len(pool)}, test {len(testset)}, labels {len(names)}")
    print(f"{'C':>6} {'weights':>10} {'macro-F1':>9} {'micro-F1':>9}")
    results = []
    for c in args.c or [1.0, 4.0, 16.0, 64.0]:
        for weights in (None, "balanced"):
            lr = LogisticRegression(C=c, max_iter=1000, random_state=42, class_weight=weights)
            row = {"C": c, "class_weight": weights or "none"}
            row |= scores(OneVsRestClassifier(lr), x, y, test_x, gold, names)
            results.append(row)
            print(
                f"{c:>6g} {row['class_weight']:>10} {row['macro_f1']:>9.3f} {row['micro_f1']:>9.3f}"
            )
    print(
        json.dumps(
            {"pool": len(pool), "test": len(testset), "labels": len(names), "results": results}
        )
    )


if __name__ == "__main__":
    main()
