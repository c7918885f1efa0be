"""Evaluation, deltas, the frozen split and the promotion gate."""

from __future__ import annotations

import random

import pytest

from loop.classification.evaluation import Prediction, evaluate
from loop.evaluation.deltas import compare
from loop.training.gate import Gate, Verdict, judge
from loop.training.split import EVALUATION, TEST_FILE, in_evaluation_sample, is_test, split

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


def test_the_test_set_is_the_evaluation_sample_and_the_owners_file() -> None:
    items = [
        *preds([("Bullish", "Bullish")] * 3, origin=EVALUATION),
        *preds([("Bullish", "Bullish")] * 2, origin=TEST_FILE),
        *(preds([("Bullish", "Bullish")], origin=o)[0] for o in ("uncertain", "rare", "random")),
        *preds([("Bullish", "Bullish")], origin="seed"),
        *preds([("Bullish", "Bullish")]),  # origin unknown: trained on
    ]
    train, test = split(items)
    assert [p.origin for p in test] == [EVALUATION] * 3 + [TEST_FILE] * 2
    assert len(train) == 5 and not any(is_test(p) for p in train)


def test_the_evaluation_sample_is_a_stable_uniform_share_of_the_stream() -> None:
    ids = [f"doc-{i}" for i in range(20000)]
    share = sum(in_evaluation_sample(i, 0.05) for i in ids) / len(ids)
    assert 0.045 < share < 0.055
    assert [in_evaluation_sample(i, 0.05) for i in ids[:500]] == [
        in_evaluation_sample(i, 0.05) for i in ids[:500]
    ]
    assert not any(in_evaluation_sample(i, 0.0) for i in ids[:500])
    assert all(in_evaluation_sample(i, 1.0) for i in ids[:500])
    with pytest.raises(ValueError):
        in_evaluation_sample("x", 1.5)


def gold_and_said(n: int, wrong: int) -> tuple[list[Prediction], list[Prediction]]:
    """``n`` test documents a base version gets all right and a head version gets wrong on
    the Bearish ones among the first ``wrong``."""
    golds = [LABELS[i % 3] for i in range(n)]
    base = preds([(g, g) for g in golds])
    head = preds(
        [(g, "Neutral" if i < wrong and g == "Bearish" else g) for i, g in enumerate(golds)]
    )
    return base, head


def verdict_of(
    base: list[Prediction], head: list[Prediction], gate: Gate, test_size: int
) -> Verdict:
    delta = compare(base, head, LABELS, base_version="v1", head_version="v2", confidence=0.9)
    return judge(test_size, "v1", delta.macro_f1, delta.per_label, gate)


def test_the_gate_promotes_on_evidence_against_what_serves() -> None:
    perfect, flawed = gold_and_said(90, wrong=30)  # 10 Bearish wrong
    assert verdict_of(flawed, perfect, Gate(), 90).passed  # clearly better
    worse = verdict_of(perfect, flawed, Gate(), 90)  # clearly worse, one label collapses
    assert not worse.passed
    assert any("of v1 (" in r and "not above" in r for r in worse.reasons)
    assert any("'Bearish'" in r for r in worse.reasons)
    assert not verdict_of(perfect, perfect, Gate(), 90).passed  # no gain, no promotion


def test_the_gate_wants_an_interval_that_rules_out_a_real_loss() -> None:
    # The head fixes two Bearish documents and breaks one Bullish one: a little better on
    # these 90 documents, but within the noise.
    golds = [LABELS[i % 3] for i in range(90)]
    base = preds([(g, "Neutral" if i in (0, 3) else g) for i, g in enumerate(golds)])
    head = preds([(g, "Neutral" if i == 1 else g) for i, g in enumerate(golds)])
    verdict = verdict_of(base, head, Gate(tolerance=0.0), 90)
    assert not verdict.passed and "not enough evidence on 90 test documents" in verdict.reasons[0]
    assert verdict_of(base, head, Gate(tolerance=0.5), 90).passed
    assert (
        verdict_of(base, head, Gate(tolerance=0.0), 90).reasons
        != verdict_of(base, head, Gate(tolerance=0.5), 90).reasons
    )


def test_the_gate_decides_nothing_on_a_small_test_set_and_alone_only_when_nothing_serves() -> None:
    perfect, flawed = gold_and_said(90, wrong=30)
    small = verdict_of(flawed, perfect, Gate(min_test_size=100), 90)
    assert not small.passed and "too few to decide anything" in small.reasons[0]
    assert judge(30, None, None, (), Gate()).passed
    assert not judge(29, None, None, (), Gate()).passed


def test_a_label_on_a_few_test_documents_does_not_block_a_clear_gain() -> None:
    # Bullish and Neutral get much better; the 6 Bearish documents get worse.
    golds = ["Bearish"] * 6 + ["Bullish"] * 150 + ["Neutral"] * 150
    swap = {"Bullish": "Neutral", "Neutral": "Bullish", "Bearish": "Bearish"}
    base = preds([(g, g if g == "Bearish" or i % 2 else swap[g]) for i, g in enumerate(golds)])
    head = preds([(g, "Neutral" if i < 3 else g) for i, g in enumerate(golds)])
    guarded = verdict_of(base, head, Gate(min_label_support=5), len(golds))
    assert not guarded.passed and any("'Bearish'" in r for r in guarded.reasons)
    assert verdict_of(base, head, Gate(), len(golds)).passed  # 6 documents: below the default 10
