"""What the trainer's last round did, kept for ``GET /v1/queue`` and the API's health."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel


class TrainerStatus(BaseModel):
    """The last round, for ``GET /v1/queue``; kept in ``$ALLOOP_HOME/trainer/status.json``."""

    finished_at: datetime
    duration_s: float
    version: str | None = None
    promoted: bool = False
    skipped: str | None = None
    error: str | None = None
    task: str = "classification"

    @staticmethod
    def path(home: Path, task: str = "classification") -> Path:
        name = "status.json" if task == "classification" else f"status-{task}.json"
        return home / "trainer" / name

    def save(self, home: Path) -> None:
        path = self.path(home, self.task)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.model_dump_json())
        os.replace(tmp, path)

    @classmethod
    def load(cls, home: Path, task: str = "classification") -> TrainerStatus | None:
        try:
            return cls.model_validate_json(cls.path(home, task).read_text())
        except (OSError, ValueError):
            return None
