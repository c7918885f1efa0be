"""The small version of `alloop bench chaos`: a few hundred tweets through the real loop
(broker, Argilla, the SetFit seed version in the scorer, real processes) while the scorer,
labeler, trainer and API are each SIGKILLed twice at random moments and restarted."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import chaos, live
from stack.argilla import LocalArgilla

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_sigkills_of_every_process_lose_and_duplicate_nothing(
    broker: str, argilla: LocalArgilla, tmp_path: Path
) -> None:
    figures = chaos.run(
        300,
        kills=2,
        seed=1,
        rate=3.0,
        model_kind="keywords",
        round_size=50,
        per_round=5,
        settle_timeout_s=240,
        stack=live.Stack(tmp_path / "stack", broker, argilla),
    )

    print(chaos.report(figures))
    assert figures["failures"] == []
    assert figures["kills"] == {name: 2 for name in chaos.PROCESSES}
    assert figures["tagged"] == 300
    assert figures["candidates"] > 0 and figures["answers"] == figures["candidates"]
    assert figures["versions"] >= 2  # the seed version and at least one round's
