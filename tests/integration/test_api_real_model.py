"""The API with the real SetFit model: real financial tweets in, the model's own answers out."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from loop.classification.factories import load_version
from loop.registry import ModelRegistry
from loop.settings import ApiSettings, Settings
from tests.conftest import tweets

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KEY = "integration-key"
LABELS = {"Bearish", "Bullish", "Neutral"}


def test_real_tweets_are_classified_by_the_promoted_setfit_model(
    setfit_registry: ModelRegistry,
) -> None:
    docs = tweets("valid", limit=8)
    settings = Settings(
        home=setfit_registry.root.parent / "home",
        registry_dir=setfit_registry.root,
        api=ApiSettings(keys=[SecretStr(KEY)], reload_check_s=3600),
    )
    with TestClient(create_app(settings), headers={"X-API-Key": KEY}) as client:
        assert client.get("/health").json()["model_version"] == "v0001"
        batch = client.post(
            "/v1/classify", json={"documents": [{"id": d.id, "text": d.text} for d in docs]}
        )
        single = client.post("/v1/classify", json={"text": docs[0].text})

    assert batch.status_code == 200, batch.text
    body = batch.json()
    assert body["model_version"] == "v0001"
    results = body["results"]
    assert [r["id"] for r in results] == [d.id for d in docs]
    for result in results:
        assert result["model_version"] == "v0001"
        assert set(result["probabilities"]) == LABELS
        assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        assert result["label"] in LABELS
        assert result["score"] == max(result["probabilities"].values())
        assert result["probabilities"][result["label"]] == result["score"]

    # The API reports what the model itself says, label for label (no column mix-up),
    # computed in the precision the API serves in (int8 where the CPU has VNNI, else bfloat16
    # where it has that).
    model = load_version(setfit_registry, "v0001", precision=settings.precision)
    expected = model.predict_proba([d.text for d in docs])
    got = np.array([[r["probabilities"][label] for label in model.labels] for r in results])
    np.testing.assert_allclose(got, expected, atol=1e-4)

    assert single.status_code == 200
    assert single.json()["results"][0]["probabilities"] == results[0]["probabilities"]
