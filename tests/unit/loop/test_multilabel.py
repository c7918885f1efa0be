"""Multi-label classification in the core: answers, agreement, training, evaluation, deltas,
selection and reading label sets. The numbers are worked out by hand in the comments."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from loop.classification.base import ClassifierConfig, applying
from loop.classification.evaluation import Prediction, evaluate
from loop.classification.selection import select
from loop.evaluation.deltas import compare
from loop.labels import LabelStore, ResolvedLabel
from loop.messages import Document, LabelEvent
from loop.readers import Columns, Rejected, read_documents
from loop.registry import ModelRegistry
from loop.selection.base import Scored, SelectionConfig
from loop.selection.uncertainty import label_uncertainty
from loop.testing.classifier import KeywordFactory
from loop.training.gate import Gate
from loop.training.rounds import RoundConfig, run_round
from loop.training.seed import seed_labels, train_and_publish
from tests.conftest import DATASETS

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
MULTI = ClassifierConfig(multi_label=True)


def answer(doc: str, labels: list[str], response: str, minutes: int = 0) -> LabelEvent:
    return LabelEvent(
        id=doc,
        text=f"text of {doc}",
        labels=labels,
        response_id=response,
        labelled_at=T0 + timedelta(minutes=minutes),
    )


def test_a_label_set_is_stored_sorted_and_a_redelivery_is_a_no_op(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "labels.db")
    assert store.add([answer("d1", ["pin", "card", "pin"], "r1")]) == 1
    assert store.add([answer("d1", ["card", "pin"], "r1")]) == 0
    [resolved] = LabelStore(tmp_path / "labels.db").labelled()
    assert (resolved.labels, resolved.label, resolved.agreement) == (("card", "pin"), None, 1.0)
    assert resolved.target == ("card", "pin")


def test_several_annotators_agree_label_by_label(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "labels.db", min_submitted=3)
    store.add(
        [
            answer("d1", ["card", "pin"], "r1"),
            answer("d1", ["card"], "r2"),
            answer("d1", ["card", "pin", "fee"], "r3"),
        ]
    )
    [resolved] = store.resolve()
    # card 3/3 in, pin 2/3 in, fee 1/3 out: agreement (1 + 2/3 + 2/3) / 3 = 0.7778
    assert resolved.status == "labelled"
    assert resolved.labels == ("card", "pin")
    assert resolved.agreement == pytest.approx(0.7778)


def test_a_tie_on_one_label_is_disputed_and_not_trained_on(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "labels.db", min_submitted=2)
    store.add([answer("d1", ["card", "pin"], "r1"), answer("d1", ["card"], "r2")])
    [resolved] = store.resolve()
    assert (resolved.status, resolved.labels, resolved.agreement) == ("disputed", None, 0.75)
    assert store.labelled() == []


def test_seed_documents_with_label_sets_join_the_store_once(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "labels.db")
    docs = [Document(id="s1", text="new pin please", labels=["pin", "new"])]
    assert seed_labels(docs, store, "classification") == 1
    assert seed_labels(docs, store, "classification") == 0
    assert store.labelled()[0].labels == ("new", "pin")


def test_the_keyword_model_learns_independent_labels_and_round_trips(tmp_path: Path) -> None:
    clf = KeywordFactory().train(
        ["lost card", "card fee", "pin reset", "pin and card"],
        [("card",), ("card", "fee"), ("pin",), ("card", "pin")],
        MULTI,
    )
    assert clf.multi_label and clf.labels == ["card", "fee", "pin"]
    [row] = clf.predict_proba(["card pin"])
    # per label, the best word: card max(3/4, 1/3); fee max(1/4, 0/3); pin max(1/4, 2/3)
    assert row == pytest.approx([3 / 4, 1 / 4, 2 / 3])
    assert applying(clf.labels, row) == ["card", "pin"]
    clf.save(tmp_path / "m")
    loaded = KeywordFactory().load(tmp_path / "m")
    assert loaded.multi_label and np.allclose(loaded.predict_proba(["card pin"]), [row])


def test_training_refuses_targets_of_the_other_kind() -> None:
    from loop.errors import ModelError

    with pytest.raises(ModelError, match="expected a set of labels"):
        KeywordFactory().train(["a", "b"], ["x", "y"], MULTI)
    with pytest.raises(ModelError, match="expected one label"):
        KeywordFactory().train(["a", "b"], [("x",), ("y",)], ClassifierConfig())


def test_label_sets_are_scored_label_by_label() -> None:
    rows = [
        Prediction(id="1", gold=["card", "pin"], predicted=["card"]),
        Prediction(id="2", gold=["fee"], predicted=["fee", "pin"]),
        Prediction(id="3", gold=["card"], predicted=["card"]),
    ]
    result = evaluate(rows, ["card", "fee", "pin"])
    assert result.multi_label and result.confusion == []
    card, fee, pin = (result.per_label[k] for k in ("card", "fee", "pin"))
    assert (card.tp, card.fp, card.fn, card.support, card.f1) == (2, 0, 0, 2, 1.0)
    assert (fee.tp, fee.fp, fee.fn, fee.f1) == (1, 0, 0, 1.0)
    assert (pin.tp, pin.fp, pin.fn, pin.support, pin.f1) == (0, 1, 1, 1, 0.0)
    assert result.macro.f1 == pytest.approx(2 / 3, abs=1e-6)
    # micro: tp 3, fp 1, fn 1 -> P = R = F1 = 0.75; exact sets: document 3 only
    assert (result.micro.precision, result.micro.f1) == (0.75, 0.75)
    assert result.accuracy == pytest.approx(1 / 3, abs=1e-6)


def test_a_delta_between_multi_label_versions_names_what_flipped() -> None:
    base = [
        Prediction(id="1", gold=["card", "pin"], predicted=["card"]),
        Prediction(id="2", gold=["fee"], predicted=["fee"]),
    ]
    head = [
        Prediction(id="1", gold=["card", "pin"], predicted=["card", "pin"]),
        Prediction(id="2", gold=["fee"], predicted=["card", "fee"]),
    ]
    delta = compare(base, head, ["card", "fee", "pin"], base_version="v1", head_version="v2")
    by_label = {m.label: m for m in delta.per_label}
    assert by_label["pin"].base == 0.0 and by_label["pin"].head == 1.0
    # card: base tp 1 fp 0 fn 0 -> 1.0; head tp 1 fp 1 -> 2/3
    assert by_label["card"].head == pytest.approx(2 / 3, abs=1e-6)
    assert [f.id for f in delta.fixed] == ["1"] and [f.id for f in delta.broken] == ["2"]
    assert delta.fixed[0].head == ["card", "pin"]
    assert delta.accuracy.base == delta.accuracy.head == 0.5


def test_a_round_trains_a_multi_label_version_and_gates_it(tmp_path: Path) -> None:
    words = {"card": "plastic card", "pin": "pin code", "fee": "fee charged"}
    items = []
    for i in range(60):
        labels = tuple(sorted(k for j, k in enumerate(words) if (i >> j) & 1)) or ("card",)
        text = " ".join(words[k] for k in labels) + f" n{i}"
        items.append(
            ResolvedLabel(
                f"d{i}",
                text,
                "classification",
                None,
                "labelled",
                1.0,
                1,
                "evaluation" if i % 5 == 0 else "uncertain",
                labels=labels,
            )
        )
    registry = ModelRegistry(tmp_path / "registry")
    config = RoundConfig(classifier=MULTI, gate=Gate(min_test_size=10))
    result = run_round(items, registry, KeywordFactory(), config)
    assert result.version == "v0001" and result.promoted
    assert (result.train_size, result.test_size) == (48, 12)
    metrics = json.loads((registry.path("v0001") / "metrics.json").read_text())
    evaluation = metrics["evaluation"]
    assert evaluation["multi_label"] and evaluation["macro"]["f1"] > 0.9
    assert all(isinstance(p["gold"], list) for p in metrics["predictions"])
    tested = {p["id"] for p in metrics["predictions"]}
    trained_pin = sum("pin" in item.target for item in items if item.id not in tested)
    assert registry.card("v0001").counts["per_label"]["pin"] == trained_pin
    second = run_round(items, registry, KeywordFactory(), config)
    assert second.base_macro_f1 == result.macro_f1  # the promoted version scored the same way


def test_publishing_from_a_seed_file_trains_on_the_label_sets(tmp_path: Path) -> None:
    docs = [
        Document(id="a", text="card lost", labels=["card"]),
        Document(id="b", text="pin forgotten", labels=["pin"]),
        Document(id="c", text="card pin", labels=["card", "pin"]),
        Document(id="d", text="single label row", label="card"),
    ]
    registry = ModelRegistry(tmp_path / "registry")
    card = train_and_publish(docs, KeywordFactory(), registry, MULTI)
    assert card.counts == {"train": 3, "per_label": {"card": 2, "pin": 2}}


def test_multi_label_uncertainty_is_the_label_nearest_one_half() -> None:
    p = np.array([[0.9, 0.05], [0.55, 0.99], [0.5, 0.5]], dtype=np.float32)
    assert label_uncertainty("breaking-ties", p) == pytest.approx([0.2, 0.9, 1.0], abs=1e-6)
    # mean binary entropy: H(0.9)=0.469, H(0.05)=0.286 -> 0.378
    assert label_uncertainty("entropy", p)[0] == pytest.approx(0.3775, abs=1e-3)
    assert label_uncertainty("entropy", p)[2] == pytest.approx(1.0)


def test_selection_picks_the_documents_with_an_undecided_label() -> None:
    window = [
        Scored(f"d{i}", f"text {i}", {"card": card, "pin": pin})
        for i, (card, pin) in enumerate([(0.98, 0.01), (0.51, 0.97), (0.02, 0.03), (0.9, 0.45)])
    ]
    config = SelectionConfig(batch_size=2, random_fraction=0, diversity=False, rare_examples=0)
    picks = select(window, config, {"card": 10, "pin": 10}, multi_label=True)
    assert [p.id for p in picks] == ["d1", "d3"]
    assert all(p.reason == "uncertain" for p in picks)


def test_rare_labels_take_their_members_among_the_labels_that_apply() -> None:
    window = [
        Scored("both", "a", {"card": 0.9, "pin": 0.8}),
        Scored("card", "b", {"card": 0.95, "pin": 0.1}),
        Scored("none", "c", {"card": 0.2, "pin": 0.3}),
    ]
    config = SelectionConfig(batch_size=1, random_fraction=0, diversity=False, rare_share=1.0)
    picks = select(window, config, {"card": 50, "pin": 1}, multi_label=True)
    assert [(p.id, p.reason) for p in picks] == [("both", "rare")]  # pin applies to "both" only


def test_label_sets_are_read_from_json_lists_jsonl_and_csv(tmp_path: Path) -> None:
    array = tmp_path / "fold0.json"
    array.write_text(
        json.dumps(
            [
                {"text": "new pin?", "intents": ["pin", "new"]},
                {"text": "no intent here", "intents": []},
                {"intents": ["pin"]},
            ]
        )
    )
    items = list(read_documents(array, Columns(labels="intents")))
    # an empty list is an answer: none of the labels applies
    assert [getattr(d, "labels", None) for d in items[:2]] == [["new", "pin"], []]
    assert isinstance(items[2], Rejected) and items[2].line == 3
    lines = tmp_path / "docs.jsonl"
    lines.write_text(json.dumps({"id": "x", "text": "t", "labels": ["b", "a"]}) + "\n")
    [doc] = read_documents(lines)
    assert isinstance(doc, Document) and doc.labels == ["a", "b"]
    table = tmp_path / "docs.csv"
    table.write_text("text,labels\ncard and pin,card|pin\nbad,card||pin\n")
    good, bad = read_documents(table)
    assert isinstance(good, Document) and good.labels == ["card", "pin"]
    assert isinstance(bad, Rejected) and "empty label" in bad.reason


NLUPP = DATASETS / "nlupp_banking"


def nlupp(fold: int, keep: tuple[str, ...]) -> list[Document]:
    """Utterances of one NLU++ fold, with their intents narrowed to ``keep``."""
    docs = []
    for item in read_documents(NLUPP / f"fold{fold}.json", Columns(labels="intents")):
        assert isinstance(item, Document)
        labels = sorted(set(item.labels or ()) & set(keep))
        if labels:
            docs.append(item.model_copy(update={"labels": labels}))
    return docs


@pytest.mark.slow
def test_a_real_setfit_model_learns_label_sets_and_loads_back(tmp_path: Path) -> None:
    from loop.classification.setfit import SetFitFactory

    keep = ("card", "pin", "transfer_payment_deposit", "lost_stolen")
    train, test = nlupp(0, keep), nlupp(1, keep)
    factory = SetFitFactory()
    config = ClassifierConfig(num_iterations=1, multi_label=True)
    clf = factory.train([d.text for d in train], [tuple(d.labels or ()) for d in train], config)
    clf.save(tmp_path / "model")
    loaded = factory.load(tmp_path / "model")

    assert loaded.multi_label and loaded.labels == sorted(keep)
    probs = loaded.predict_proba([d.text for d in test])
    assert probs.shape == (len(test), len(keep))
    assert not np.allclose(probs.sum(axis=1), 1.0)  # independent labels, not a distribution
    said = [sorted(applying(loaded.labels, row)) for row in probs]
    result = evaluate(
        [
            Prediction(id=d.id, gold=d.labels or [], predicted=s)
            for d, s in zip(test, said, strict=True)
        ],
        loaded.labels,
    )
    # Far above what guessing gives: these four intents are easy to tell apart.
    assert result.micro.f1 > 0.6, result.per_label
