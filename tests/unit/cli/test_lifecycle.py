"""The model owner's lifecycle from the command line, for both tasks: a seed model from a
labelled file, the models commands on either registry, evaluate on a file of one's own, and
an export of the label store that reads back as a seed file.

The entity extractor here is the shipped gazetteer fake (ALLOOP_ENTITIES__MODEL_KIND) and the
classifier the keyword fake, so each command takes milliseconds; the integration tests run the
same commands with the real MiniLM tagger and SetFit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from api.app import create_app
from cli.main import app, main
from loop.settings import ApiSettings, EntitySettings, Settings

KEY = "cli-test-key"

SEED = """# id = s1
Shares\tO
of\tO
Acme\tB-corporation
rise\tO

Anna\tB-person
visits\tO
New\tB-location
York\tI-location

Acme\tB-corporation
hires\tO
Anna\tB-person
"""

TEST = """# id = t1
Acme\tB-corporation
and\tO
Anna\tB-person
in\tO
New\tB-location
York\tI-location

# id = t2
Bob\tB-person
likes\tO
Acme\tB-corporation
"""


def env_of(tmp_path: Path) -> dict[str, str]:
    return {
        "ALLOOP_HOME": str(tmp_path / "home"),
        "ALLOOP_REGISTRY_DIR": str(tmp_path / "registry"),
        "ALLOOP_ENTITIES__MODEL_KIND": "gazetteer",
        "ALLOOP_ENTITIES__PATTERNS": "false",
        "ALLOOP_LOG_LEVEL": "WARNING",
    }


def run(tmp_path: Path, *args: str, **extra: str) -> Result:
    result = CliRunner().invoke(app, list(args), env={**env_of(tmp_path), **extra})
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result


def api(tmp_path: Path) -> TestClient:
    settings = Settings(
        home=tmp_path / "home",
        registry_dir=tmp_path / "registry",
        api=ApiSettings(keys=[SecretStr(KEY)], reload_check_s=3600),
        entities=EntitySettings(enabled=True, patterns=False, model_kind="gazetteer"),
    )
    return TestClient(create_app(settings), headers={"X-API-Key": KEY})


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    seed, test = tmp_path / "seed.conll", tmp_path / "test.conll"
    seed.write_text(SEED, encoding="utf-8")
    test.write_text(TEST, encoding="utf-8")
    return seed, test


def test_an_entity_seed_model_from_conll_serves_and_is_scored(
    tmp_path: Path, files: tuple[Path, Path]
) -> None:
    seed, test = files
    trained = run(tmp_path, "train", "--task", "entities", "--data", str(seed), "--test", str(test))
    assert "registered entity v0001 (promoted) with types corporation, location, person" in (
        trained.output
    )
    assert "scored on the frozen test set: 2 documents {'test-file': 2}" in trained.output

    listed = run(tmp_path, "models", "list", "--task", "entities")
    assert listed.output.startswith("* v0001") and "gazetteer" in listed.output
    assert "no versions" in run(tmp_path, "models", "list").output  # the classifier's registry
    card = json.loads(run(tmp_path, "models", "show", "v0001", "--task", "entities").output)
    assert card["task"] == "entities" and card["counts"]["train"] == 3
    assert set(card["counts"]["forms"]) == {"acme", "anna", "new york"}

    with api(tmp_path) as client:
        found = client.post("/v1/entities", json={"text": "Anna joins Acme in New York"}).json()
        evaluation = client.get("/v1/evaluations/v0001", params={"task": "entities"}).json()
    assert found["entity_version"] == "v0001"
    spans = {(e["text"], e["label"]) for e in found["results"][0]["entities"]}
    assert spans == {("Anna", "person"), ("Acme", "corporation"), ("New York", "location")}
    # Bob was never seen: one of the five test spans is missed.
    assert evaluation["micro"]["recall"] == 0.8 and evaluation["per_type"]["person"]["fn"] == 1

    printed = run(tmp_path, "evaluate", "v0001", "--task", "entities", "--data", str(test))
    assert json.loads(printed.stdout) == evaluation


def test_promote_and_rollback_move_the_entity_pointer_only(
    tmp_path: Path, files: tuple[Path, Path]
) -> None:
    seed, test = files
    run(tmp_path, "train", "--task", "entities", "--data", str(seed))
    second = run(tmp_path, "train", "--task", "entities", "--data", str(test), "--no-promote")
    assert "registered entity v0002 (not promoted)" in second.output
    promoted = run(tmp_path, "models", "promote", "v0002", "--task", "entities")
    assert "promoted v0002" in promoted.output
    assert (
        run(tmp_path, "models", "list", "--task", "entities")
        .output.splitlines()[1]
        .startswith("* v0002")
    )
    back = run(tmp_path, "models", "rollback", "--task", "entities")
    assert "rolled back from v0002 to v0001" in back.output
    pointer = json.loads((tmp_path / "registry" / "entities" / "promoted.json").read_text())
    assert pointer["version"] == "v0001"
    assert not (tmp_path / "registry" / "promoted.json").exists()


def test_an_entity_export_reads_back_as_a_seed_file(
    tmp_path: Path, files: tuple[Path, Path]
) -> None:
    seed, test = files
    run(tmp_path, "train", "--task", "entities", "--data", str(seed), "--test", str(test))
    held = spans_by_id(run(tmp_path, "labels", "export", "--task", "entities").stdout)
    assert len(held) == 5 and held["t2"] == [("Bob", "person"), ("Acme", "corporation")]
    for form in ("jsonl", "csv", "conll"):
        out = tmp_path / f"labels.{form}"
        args = ["labels", "export", "--task", "entities", "--format", form, "--out", str(out)]
        assert "exported 5 entities label(s)" in run(tmp_path, *args).output
        again = tmp_path / f"again-{form}"
        trained = run(again, "train", "--task", "entities", "--data", str(out))
        assert "registered entity v0001 (promoted)" in trained.output
        # The same documents with the same spans, each now a seed label.
        exported = run(again, "labels", "export", "--task", "entities").stdout
        assert spans_by_id(exported) == held, form
        assert {json.loads(line)["origin"] for line in exported.splitlines()} == {"seed"}
    only_test = run(
        tmp_path, "labels", "export", "--task", "entities", "--origin", "test-file"
    ).stdout
    assert {json.loads(line)["id"] for line in only_test.splitlines()} == {"t1", "t2"}


def spans_by_id(jsonl: str) -> dict[str, list[tuple[str, str]]]:
    rows = [json.loads(line) for line in jsonl.splitlines()]
    return {r["id"]: [(m["text"], m["label"]) for m in r["spans"]] for r in rows}


def classifier_world(tmp_path: Path) -> TestClient:
    """Two keyword versions made by real rounds (tests/unit/api/test_evaluations.py), the
    answers in the label store of ``tmp_path/home``."""
    from tests.unit.api.test_evaluations import trained

    return trained(tmp_path)[1]


def test_classifier_evaluate_on_an_exported_test_set_matches_the_api(tmp_path: Path) -> None:
    client = classifier_world(tmp_path)
    export = tmp_path / "evaluation.csv"
    run(
        tmp_path,
        "labels",
        "export",
        "--format",
        "csv",
        "--origin",
        "evaluation",
        "--out",
        str(export),
    )
    header, *lines = export.read_text().splitlines()
    assert header == "id,text,label,agreement,answers,origin,labelled_at"
    assert len(lines) == 24 and all(",evaluation," in line for line in lines)

    with client:
        served: dict[str, Any] = client.get("/v1/evaluations/v0001").json()
    printed = run(tmp_path, "evaluate", "v0001", "--data", str(export))
    mine = json.loads(printed.stdout)
    # The same documents, so the same scores; only where they came from is named otherwise.
    assert mine.pop("test_origins") == {"test-file": 24}
    assert served.pop("test_origins") == {"evaluation": 24}
    assert mine == served
    assert served["macro"]["f1"] < 1.0  # v0001 learned from wrong labels: a real comparison
    assert "v0001 on 24 documents" in printed.stderr


def test_a_multi_label_version_is_scored_label_by_label(tmp_path: Path) -> None:
    from loop.classification.base import ClassifierConfig
    from loop.registry import ModelRegistry
    from loop.testing.classifier import KeywordFactory

    config = ClassifierConfig(multi_label=True)
    texts = ["card lost", "card stolen abroad", "lost pin", "abroad fees"]
    sets = [("card", "lost"), ("card", "stolen"), ("lost",), ("fees",)]
    model = KeywordFactory().train(texts, sets, config)
    registry = ModelRegistry(tmp_path / "registry")
    registry.publish(
        model.save, labels=model.labels, kind="keywords", training_args=config.to_dict()
    )
    gold = tmp_path / "gold.csv"
    gold.write_text("text,labels\ncard lost today,card|lost\nfees abroad,fees\n")
    mine = json.loads(run(tmp_path, "evaluate", "v0001", "--data", str(gold)).stdout)
    assert mine["multi_label"] is True and mine["confusion"] == []
    assert mine["test_size"] == 2 and mine["per_label"]["fees"]["tp"] == 1
    assert mine["per_label"]["card"]["support"] == 1


def one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str
) -> str:
    """What ``alloop ARGS`` says on stderr when it fails (exit code 2), as a user sees it."""
    for name, value in env_of(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "argv", ["alloop", *args])
    with pytest.raises(SystemExit) as stopped:
        main()
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ("evaluate", "v0007", "--task", "entities", "--data", "{test}"),
            "no model version 'v0007'",
        ),
        (("evaluate", "v0001", "--task", "entities", "--data", "{missing}"), "no such file"),
        (("evaluate", "v0001", "--task", "entities", "--data", "{bad}"), "is not O, B-<type>"),
        (("evaluate", "v0001", "--task", "entities", "--data", "{plain}"), "no entity span in it"),
        (("train", "--task", "entities", "--data", "{plain}"), "no entity span to train on"),
        (("models", "list", "--task", "sentiment"), "unknown task 'sentiment'"),
        (("labels", "export", "--format", "conll"), "conll holds entity tags"),
        (("models", "rollback", "--task", "entities"), "no earlier promoted version"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    tmp_path: Path,
    files: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    said: str,
) -> None:
    seed, test = files
    run(tmp_path, "train", "--task", "entities", "--data", str(seed))
    (tmp_path / "bad.conll").write_text("Acme\tX-corporation\n", encoding="utf-8")
    (tmp_path / "plain.conll").write_text("nothing\tO\nhere\tO\n", encoding="utf-8")
    paths = {
        "test": test,
        "missing": tmp_path / "missing.conll",
        "bad": tmp_path / "bad.conll",
        "plain": tmp_path / "plain.conll",
    }
    capsys.readouterr()
    err = one_line_error(tmp_path, capsys, monkeypatch, *(a.format(**paths) for a in args))
    assert err.startswith("error: ") and said in err, err
