"""Checking Argilla's webhook deliveries.

Argilla signs each delivery the Standard Webhooks way: the headers ``webhook-id``,
``webhook-timestamp`` (Unix seconds) and ``webhook-signature`` (space-separated ``v1,<base64>``
entries), where the signature is HMAC-SHA256 over ``"<id>.<timestamp>.<raw body>"`` keyed with
the base64-decoded secret. A delivery older or newer than ``tolerance_s`` is refused, so a
captured request cannot be replayed later.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

from api.errors import ApiError

SECRET_PREFIX = "whsec_"


class BadSignature(ApiError):
    """A webhook delivery whose signature headers are missing, stale or wrong."""

    status_code = 401
    code = "bad_signature"


class WebhooksOff(ApiError):
    """No webhook secret is configured, so no delivery can be trusted."""

    status_code = 503
    code = "webhooks_not_configured"


def _key(secret: str) -> bytes:
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return raw.encode("utf-8")  # not base64: use the text itself, as a plain HMAC key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for a delivery (used by tests and by `alloop` tools)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: int = 300,
    now: float | None = None,
) -> str:
    """Check a delivery; return its ``webhook-id``, or raise :class:`BadSignature`."""
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    offered = headers.get("webhook-signature")
    if not (msg_id and stamp and offered):
        raise BadSignature(
            "missing webhook-id, webhook-timestamp or webhook-signature header: "
            "is this delivery from Argilla?"
        )
    try:
        timestamp = int(stamp)
    except ValueError:
        raise BadSignature(f"webhook-timestamp is not a Unix time: {stamp!r}") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise BadSignature(
            f"webhook-timestamp is {int(current - timestamp)} s away from this server's clock "
            f"(at most {tolerance_s} s accepted)"
        )
    expected = sign(secret, msg_id, timestamp, body).encode()
    candidates = [part.encode() for part in offered.split() if part.startswith("v1,")]
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise BadSignature("the webhook signature does not match: check the webhook secret")
    return msg_id
