"""Evaluation, deltas, the frozen split and the promotion gate."""

from __future__ import annotations

import random

import pytest

from loop.deltas import compare
from loop.evaluation import Prediction, evaluate
from loop.promotion import Gate, judge
from loop.split import in_test, split

LABELS = ["Bearish", "Bullish", "Neutral"]


def preds(pairs: list[tuple[str, str]], origin: str | None = None) -> list[Prediction]:
    return [
        Prediction(id=f"d{i}", gold=g, predicted=p, origin=origin) for i, (g, p) in enumerate(pairs)
    ]


def test_per_label_metrics_match_scikit_learn() -> None:
    from sklearn.metrics import precision_recall_fscore_support

    rng = random.Random(3)
    gold = [rng.choice(LABELS) for _ in range(300)]
    said = [g if rng.random() < 0.7 else rng.choice(LABELS) for g in gold]
    result = evaluate(preds(list(zip(gold, said, strict=True))), LABELS)
    p, r, f, s = precision_recall_fscore_support(gold, said, labels=LABELS, zero_division=0)
    for i, label in enumerate(LABELS):
        m = result.per_label[label]
        assert (m.precision, m.recall, m.f1) == pytest.approx((p[i], r[i], f[i]), abs=1e-6)
        assert m.support == s[i]
        assert m.tp + m.fn == s[i]
    macro = precision_recall_fscore_support(
        gold, said, labels=LABELS, average="macro", zero_division=0
    )
    micro = precision_recall_fscore_support(
        gold, said, labels=LABELS, average="micro", zero_division=0
    )
    assert result.macro.f1 == pytest.approx(macro[2], abs=1e-6)
    assert result.micro.f1 == pytest.approx(micro[2], abs=1e-6)


def test_confusion_matrix_raw_and_normalised_and_origins() -> None:
    pairs = [
        ("Bullish", "Bullish"),
        ("Bullish", "Neutral"),
        ("Neutral", "Neutral"),
        ("Bearish", "Neutral"),
    ]
    items = preds(pairs)
    items[0] = items[0].model_copy(update={"origin": "random"})
    result = evaluate(items, LABELS)
    assert result.confusion == [[0, 0, 1], [0, 1, 1], [0, 0, 1]]
    assert result.confusion_normalised[1] == [0.0, 0.5, 0.5]
    assert result.test_origins == {"random": 1, "unknown": 3}
    assert result.accuracy == 0.5


def test_a_label_absent_from_the_test_set_does_not_drag_the_macro_average() -> None:
    result = evaluate(preds([("Bullish", "Bullish"), ("Neutral", "Neutral")]), LABELS)
    assert result.per_label["Bearish"].support == 0
    assert result.macro.f1 == 1.0


def test_deltas_find_flips_and_a_significant_gain() -> None:
    rng = random.Random(5)
    gold = [rng.choice(LABELS) for _ in range(400)]
    base_said = [g if rng.random() < 0.5 else rng.choice(LABELS) for g in gold]
    head_said = [g if rng.random() < 0.9 else b for g, b in zip(gold, base_said, strict=True)]
    base = preds(list(zip(gold, base_said, strict=True)))
    head = preds(list(zip(gold, head_said, strict=True)))
    delta = compare(base, head, LABELS, base_version="v1", head_version="v2")
    assert delta.common_test_size == 400
    assert delta.macro_f1.delta > 0.2
    assert delta.macro_f1.significant and delta.macro_f1.ci_low > 0
    assert delta.macro_f1.delta == pytest.approx(
        evaluate(head, LABELS).macro.f1 - evaluate(base, LABELS).macro.f1, abs=1e-5
    )
    fixed = {f.id for f in delta.fixed}
    broken = {f.id for f in delta.broken}
    expected_fixed = {
        f"d{i}"
        for i, (g, b, h) in enumerate(zip(gold, base_said, head_said, strict=True))
        if b != g and h == g
    }
    assert fixed == expected_fixed and not broken & fixed
    assert all(f.head != f.gold for f in delta.broken)


def test_deltas_of_identical_versions_are_zero_with_a_zero_interval() -> None:
    same = preds([("Bullish", "Neutral"), ("Neutral", "Neutral"), ("Bearish", "Bearish")])
    delta = compare(same, same, LABELS, base_version="v1", head_version="v1")
    assert delta.macro_f1.delta == 0 and delta.macro_f1.ci_low == 0 and delta.macro_f1.ci_high == 0
    assert delta.fixed == delta.broken == []


def test_deltas_use_only_documents_both_versions_saw() -> None:
    old = preds([("Bullish", "Bullish")])
    new = preds([("Bullish", "Neutral"), ("Neutral", "Neutral")])
    delta = compare(old, new, LABELS, base_version="v1", head_version="v2")
    assert delta.common_test_size == 1
    assert [f.id for f in delta.broken] == ["d0"]


def test_the_split_is_stable_and_close_to_the_fraction() -> None:
    ids = [f"doc-{i}" for i in range(5000)]
    share = sum(in_test(i, 0.2) for i in ids) / len(ids)
    assert 0.18 < share < 0.22
    assert [in_test(i) for i in ids[:50]] == [in_test(i) for i in ids[:50]]
    items = preds([("Bullish", "Bullish")] * 200)
    train, test = split(items, 0.2)
    assert len(train) + len(test) == 200
    assert {p.id for p in test} == {p.id for p in items if in_test(p.id)}
    with pytest.raises(ValueError):
        in_test("x", 1.0)


def test_the_gate_refuses_a_macro_drop_or_a_label_collapse() -> None:
    good = evaluate(
        preds([("Bullish", "Bullish"), ("Neutral", "Neutral"), ("Bearish", "Bearish")]), LABELS
    )
    worse = evaluate(
        preds([("Bullish", "Bullish"), ("Neutral", "Neutral"), ("Bearish", "Neutral")]), LABELS
    )
    assert judge(good, None, Gate()).passed
    assert judge(good, worse, Gate()).passed
    verdict = judge(worse, good, Gate())
    assert not verdict.passed
    assert any("macro-F1" in r for r in verdict.reasons)
    assert any("'Bearish'" in r for r in verdict.reasons)
    assert judge(worse, good, Gate(max_macro_f1_drop=1.0, max_label_f1_drop=1.0)).passed
    empty = evaluate([], LABELS)
    assert not judge(empty, None, Gate()).passed
