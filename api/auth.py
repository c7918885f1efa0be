"""API keys: compared in constant time, never kept or logged in the clear."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from pydantic import SecretStr


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


class KeyChecker:
    """Holds SHA-256 digests of the configured keys; an empty list disables auth.

    Comparing fixed-length digests with :func:`hmac.compare_digest`, against every key
    without stopping at the first match, leaks neither a key's length nor which key matched.
    """

    def __init__(self, keys: Sequence[SecretStr]) -> None:
        self._digests = tuple(_digest(key.get_secret_value()) for key in keys)

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def __len__(self) -> int:
        return len(self._digests)

    def accepts(self, key: str) -> bool:
        given = _digest(key)
        found = False
        for digest in self._digests:
            found |= hmac.compare_digest(given, digest)
        return found
