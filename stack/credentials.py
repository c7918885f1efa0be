"""The local Argilla's accounts: what ``alloop stack up`` set up, kept with mode 0600."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pydantic import BaseModel

from stack.local import StackError

logger = logging.getLogger(__name__)


CREDENTIALS_FILE = "argilla.json"


class ArgillaCredentials(BaseModel):
    """What the local stack set up in Argilla; kept in ``argilla.json`` with mode 0600."""

    url: str
    owner_api_key: str
    annotator_api_key: str
    owner: str = "alloop-owner"
    annotator: str = "annotator"
    owner_password: str = ""
    annotator_password: str = ""
    webhook_secret: str | None = None

    def save(self, state_dir: Path) -> Path:
        state_dir.mkdir(parents=True, exist_ok=True)
        path = state_dir / CREDENTIALS_FILE
        tmp = state_dir / f".{CREDENTIALS_FILE}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.model_dump_json(indent=2))
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, state_dir: Path) -> ArgillaCredentials:
        path = state_dir / CREDENTIALS_FILE
        if not path.is_file():
            raise StackError(
                "no Argilla: run `alloop stack up`, or set ALLOOP_ARGILLA__URL and "
                "ALLOOP_ARGILLA__API_KEY"
            )
        return cls.model_validate_json(path.read_text())


def argilla_credentials(state_dir: Path, role: str = "owner") -> tuple[str, str]:
    """The local Argilla's URL and the API key of its ``owner`` or ``annotator`` account."""
    found = ArgillaCredentials.load(state_dir)
    return found.url, found.owner_api_key if role == "owner" else found.annotator_api_key
