"""Stable document ids: the one given, or a hash of the content."""

import hashlib
import unicodedata


def content_id(text: str) -> str:
    """Return a stable id for a text: the same text always gets the same id.

    The text is NFC-normalised and stripped first, so that a trailing newline or a different
    Unicode composition of the same characters does not make a new document.
    """
    normalised = unicodedata.normalize("NFC", text).strip()
    digest = hashlib.sha256(normalised.encode("utf-8")).hexdigest()
    return f"h-{digest[:24]}"


def stable_fraction(key: str, salt: str = "") -> float:
    """Map a key to a number in [0, 1) that never changes, for frozen splits and samples."""
    digest = hashlib.sha256(f"{salt}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
