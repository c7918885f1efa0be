"""Entity training rounds with the gazetteer fake: split, evaluation, gate, card, API."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from loop.entities.patterns import PatternExtractor
from loop.entities.rounds import PATTERNS, EntityRoundConfig, run_entity_round
from loop.evaluation.curves import curves
from loop.labels import ResolvedLabel
from loop.messages import EntityMention
from loop.registry import ModelRegistry
from loop.settings import ApiSettings, EntitySettings, Settings
from loop.testing.extractor import GazetteerFactory
from loop.training.gate import Gate
from loop.training.split import EVALUATION

TYPES = ("CRYPTO", "FOREX", "STOCK")
CONFIG = EntityRoundConfig(types=TYPES, gate=Gate(min_test_size=3))


def labelled(doc_id: str, surface: str, label: str) -> ResolvedLabel:
    """A labelled document; ids ending in ``-t`` came from the evaluation sample (the frozen
    test set), the others were selected (trained on)."""
    text = f"Traders watch {surface} today"
    start = text.index(surface)
    span = EntityMention(label=label, start=start, end=start + len(surface), text=surface)
    origin = EVALUATION if doc_id.endswith("-t") else "uncertain"
    return ResolvedLabel(doc_id, text, "entities", None, "labelled", 1.0, 1, origin, None, (span,))


def ids(prefix: str, test: int, train: int) -> list[str]:
    """``test`` document ids of the evaluation sample and ``train`` selected ones."""
    return [f"{prefix}-{i}-t" for i in range(test)] + [f"{prefix}-{i}" for i in range(train)]


def seeds() -> list[ResolvedLabel]:
    docs = [labelled(i, "USDJPY", "FOREX") for i in ids("fx", 2, 4)]
    docs += [labelled(i, "$AAPL", "STOCK") for i in ids("st", 2, 4)]
    docs += [labelled(i, "BTC", "CRYPTO") for i in ids("cr", 2, 4)]
    return docs


def test_rounds_learn_an_unseen_pair_and_the_card_records_the_forms(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "registry" / "entities")
    first = run_entity_round(seeds(), registry, GazetteerFactory(), CONFIG)
    assert (first.version, first.promoted, first.test_size) == ("v0001", True, 6)
    card = registry.card("v0001")
    assert card.task == "entities" and card.kind == "gazetteer"
    assert card.counts["per_type"] == {"CRYPTO": 4, "FOREX": 4, "STOCK": 4}
    assert card.counts["forms"] == ["$aapl", "btc", "usdjpy"]

    new_pair = [labelled(i, "AUDJPY", "FOREX") for i in ids("aud", 2, 3)]
    second = run_entity_round(seeds() + new_pair, registry, GazetteerFactory(), CONFIG)
    assert (second.version, second.promoted) == ("v0002", True), second.reasons
    assert second.rescored == ["v0001"]  # the test set grew: v0001 scored on it again
    base = (registry.card("v0001").metrics or {})["evaluation"]
    head = (registry.card("v0002").metrics or {})["evaluation"]
    assert base["per_type"]["FOREX"]["recall"] == 0.5  # USDJPY found, AUDJPY missed
    assert head["per_type"]["FOREX"]["recall"] == 1.0
    assert base["test_size"] == head["test_size"] == 8
    assert "audjpy" in registry.card("v0002").counts["forms"]

    settings = Settings(
        home=tmp_path / "home",
        registry_dir=tmp_path / "registry",
        api=ApiSettings(keys=[SecretStr("k")], reload_check_s=3600),
        entities=EntitySettings(enabled=True),
    )
    with TestClient(create_app(settings), headers={"X-API-Key": "k"}) as client:
        delta = client.get("/v1/evaluations/deltas", params={"task": "entities"}).json()
        evaluation = client.get("/v1/evaluations/v0002", params={"task": "entities"}).json()
        curves = client.get("/v1/curves", params={"task": "entities"}).json()
        png = client.get("/v1/curves", params={"task": "entities", "format": "png"})
        wrong = client.get("/v1/evaluations/v0002", params={"task": "nonsense"})
        tagged = client.post("/v1/entities", json={"text": "Buy AUDJPY now"}).json()
    assert (delta["base"], delta["head"]) == ("v0001", "v0002")
    forex = next(d for d in delta["per_type"] if d["label"] == "FOREX")
    assert forex["delta"] > 0 and {f["id"] for f in delta["fixed"]} == set(ids("aud", 2, 0))
    assert evaluation["type_confusion_labels"][-1] == "none"
    assert [c["metric"] for c in curves] == ["macro_f1", "unseen_recall"]
    assert [p["version"] for p in curves[0]["points"]] == ["v0001", "v0002"]
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert wrong.status_code == 422 and wrong.json()["error"] == "unknown_task"
    assert tagged["entity_version"] == "v0002"
    assert [(e["label"], e["text"]) for e in tagged["results"][0]["entities"]] == [
        ("FOREX", "AUDJPY")
    ]


def test_the_gate_refuses_a_worse_version_and_the_promoted_one_stays(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "entities")
    run_entity_round(seeds(), registry, GazetteerFactory(), CONFIG)
    # The FOREX training documents are gone (the test set is the same): the next version
    # never saw USDJPY and misses it.
    forgetful = [item for item in seeds() if item.spans and item.spans[0].label != "FOREX"]
    forgetful += [
        ResolvedLabel(i.id, i.text, i.task, None, "labelled", 1.0, 1, i.origin, None, i.spans)
        for i in seeds()
        if i.spans and i.spans[0].label == "FOREX" and i.origin == EVALUATION
    ]
    worse = run_entity_round(forgetful, registry, GazetteerFactory(), CONFIG)
    assert worse.version == "v0002" and not worse.promoted
    assert any("not above the 1.000 of v0001" in reason for reason in worse.reasons), worse.reasons
    assert registry.promoted() == "v0001"


def test_a_round_without_any_span_is_skipped(tmp_path: Path) -> None:
    empty = [
        ResolvedLabel(f"d{i}", "nothing here", "entities", None, "labelled", 1.0, 1, None, None, ())
        for i in range(10)
    ]
    result = run_entity_round(empty, ModelRegistry(tmp_path / "e"), GazetteerFactory(), CONFIG)
    assert result.version is None and "no entity span" in (result.skipped or "")


def test_the_first_version_must_beat_the_serving_patterns(tmp_path: Path) -> None:
    """Before any version the patterns tag documents: they are the baseline, scored on the
    same test set and drawn on the curve at 0 labels."""
    with_patterns = EntityRoundConfig(
        TYPES, gate=Gate(min_test_size=3), patterns=PatternExtractor()
    )
    registry = ModelRegistry(tmp_path / "entities")
    # The patterns know every one of these already: a version that learned them is no better.
    same = run_entity_round(seeds(), registry, GazetteerFactory(), with_patterns)
    assert same.version == "v0001" and not same.promoted and registry.promoted() is None
    assert same.baseline == PATTERNS and same.base_macro_f1 == 1.0
    assert any("not above the 1.000 of patterns" in r for r in same.reasons), same.reasons
    assert same.rescored == [PATTERNS]

    # Tesla is a stock the patterns do not know: a version that learned it beats them.
    tesla = [labelled(i, "Tesla", "STOCK") for i in ids("ts", 3, 3)]
    better = run_entity_round(seeds() + tesla, registry, GazetteerFactory(), with_patterns)
    assert better.promoted and registry.promoted() == "v0002", better.reasons
    assert better.baseline == PATTERNS and better.delta is not None and better.delta.delta > 0
    points = curves(registry, ["macro_f1"])[0].points
    assert [(p.version, p.labels, p.test_size) for p in points] == [
        (PATTERNS, 0, 9),
        ("v0001", 12, 9),
        ("v0002", 15, 9),
    ]


def test_versions_are_scored_as_served_with_the_pattern_matches(tmp_path: Path) -> None:
    """A version that learned USDJPY as a STOCK (wrong training labels) is served with the
    gazetteer's FOREX beside it, which wins the conflict: its evaluation says what users get."""
    wrong = [labelled(i, "USDJPY", "STOCK") for i in ids("fx", 0, 4)]
    test = [labelled(i, "USDJPY", "FOREX") for i in ids("fx-test", 3, 0)]
    alone = run_entity_round(
        wrong + test, ModelRegistry(tmp_path / "alone"), GazetteerFactory(), CONFIG
    )
    served = run_entity_round(
        wrong + test,
        ModelRegistry(tmp_path / "served"),
        GazetteerFactory(),
        EntityRoundConfig(TYPES, gate=Gate(min_test_size=3), patterns=PatternExtractor()),
    )
    assert alone.macro_f1 == 0.0  # the version alone tags a STOCK
    assert served.macro_f1 == 1.0  # as served, the gazetteer's FOREX wins
    assert served.base_macro_f1 == 1.0 and not served.promoted  # no better than the patterns
