"""The stopping signal: the gain of the last labels, and small-text's KappaAverage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loop.evaluation.stopping import stopping

LABELS = ["down", "up"]


def rows(wrong: set[int], n: int = 60) -> list[dict[str, Any]]:
    """Predictions on ``n`` test documents, right except on ``wrong``."""
    gold = [LABELS[i % 2] for i in range(n)]
    return [
        {"id": f"d{i}", "gold": g, "predicted": LABELS[1 - i % 2] if i in wrong else g}
        for i, g in enumerate(gold)
    ]


def test_settled_predictions_say_stop() -> None:
    same = rows(set(range(5)))
    signal = stopping(
        [
            ("v1", 100, rows(set(range(20)))),
            ("v2", 200, same),
            ("v3", 300, same),
            ("v4", 400, same),
        ],
        LABELS,
        window=2,
    )
    assert signal.kappa == [1.0, 1.0]  # the last two pairs: v2-v3, v3-v4
    assert signal.stop and signal.advice.startswith("stop: predictions have settled")
    assert (signal.gain_base, signal.gain_labels) == ("v3", 100)
    assert signal.gain is not None and signal.gain.delta == 0.0


def test_labels_that_still_change_the_model_say_keep_labeling() -> None:
    signal = stopping(
        [
            ("v1", 100, rows(set(range(30)))),
            ("v2", 200, rows(set(range(15)))),
            ("v3", 300, rows(set())),
        ],
        LABELS,
        last=150,
    )
    assert not signal.stop and all(k < 0.99 for k in signal.kappa)
    assert (signal.gain_base, signal.gain_labels) == ("v1", 200)
    assert signal.gain is not None and signal.gain.ci_low > 0
    assert signal.advice.startswith("keep labeling: the last 200 labels (v1 to v3)")


def test_one_version_is_not_enough() -> None:
    signal = stopping([("v1", 100, rows(set()))], LABELS)
    assert signal.gain is None and not signal.stop and "too few versions" in signal.advice


def test_the_api_and_the_command_serve_the_signal(tmp_path: Path) -> None:
    from tests.unit.api.test_evaluations import trained

    _, client = trained(tmp_path)
    with client:
        body = client.get("/v1/curves/stopping", params={"last": 10}).json()
        entities = client.get("/v1/curves/stopping", params={"task": "entities"})
    assert body["versions"] == ["v0001", "v0002"] and body["test_size"] == 24
    assert body["gain_base"] == "v0001" and body["gain"]["delta"] > 0
    assert len(body["kappa"]) == 1 and body["stop"] is False
    assert entities.status_code == 422 and "classification" in entities.json()["detail"]

    from typer.testing import CliRunner

    from cli.main import app

    env = {"ALLOOP_REGISTRY_DIR": str(tmp_path / "registry"), "ALLOOP_HOME": str(tmp_path)}
    printed = CliRunner().invoke(app, ["models", "stopping", "--last", "10"], env=env)
    assert printed.exit_code == 0, printed.output
    assert "versions   v0001, v0002 on 24 test documents" in printed.output
    assert body["advice"] in printed.output
