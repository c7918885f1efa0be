"""Checking Argilla's webhook deliveries.

Argilla signs each delivery the Standard Webhooks way (https://www.standardwebhooks.com): the
headers ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``
(space-separated ``v1,<base64>`` entries) carry an HMAC-SHA256 over
``"<id>.<timestamp>.<raw body>"`` keyed with the base64-decoded secret. The signing and the
check are the maintained ``standardwebhooks`` package's (Argilla signs with the same one);
this module adds what it leaves to the receiver: an empty or malformed secret is refused
rather than used as a key, every failure is one readable reason, and a ``webhook-id`` that
was already processed is refused while its timestamp is still inside the tolerance window
(:class:`loop.label_db.DeliveryLog`, kept in the label database so that it holds across API
restarts and processes), so a captured delivery cannot be replayed.
"""

from __future__ import annotations

import binascii
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook, WebhookVerificationError

from api.errors import ApiError

TOLERANCE_S = 300  # the package's: a delivery more than 5 minutes off is refused


class BadSignature(ApiError):
    """A webhook delivery whose signature headers are missing, stale or wrong."""

    status_code = 401
    code = "bad_signature"


class WebhooksOff(ApiError):
    """No usable webhook secret is configured, so no delivery can be trusted."""

    status_code = 503
    code = "webhooks_not_configured"


class ReplayedDelivery(ApiError):
    """A delivery whose ``webhook-id`` was already processed."""

    status_code = 409
    code = "replayed_delivery"


def _webhook(secret: str) -> Webhook:
    if not secret.strip():
        raise WebhooksOff(
            "the webhook secret is empty, and a delivery signed with an empty key proves "
            "nothing: set ALLOOP_ARGILLA__WEBHOOK_SECRET to the secret Argilla returned"
        )
    try:
        return Webhook(secret)
    except (EmptyWebhookSecretError, binascii.Error, ValueError) as exc:
        raise WebhooksOff(
            f"the webhook secret is not a Standard Webhooks secret (base64, optionally "
            f"prefixed whsec_): {exc}"
        ) from None


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for a delivery (used by tests and by `alloop` tools)."""
    when = datetime.fromtimestamp(timestamp, UTC)
    return str(_webhook(secret).sign(msg_id, when, body.decode("utf-8")))


def verify(secret: str, headers: Mapping[str, str], body: bytes) -> str:
    """Check a delivery; return its ``webhook-id``, or raise :class:`BadSignature` (or
    :class:`WebhooksOff` when ``secret`` is empty or malformed)."""
    hook = _webhook(secret)
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        hook.verify(body, lowered, json_parse=False)
    except WebhookVerificationError as exc:
        raise BadSignature(_explain(str(exc), lowered.get("webhook-timestamp"))) from None
    except (ValueError, binascii.Error) as exc:  # a signature entry or a body it cannot read
        raise BadSignature(f"unreadable webhook-signature header or body: {exc}") from None
    return lowered["webhook-id"]


def _explain(problem: str, stamp: str | None) -> str:
    """The package's terse reasons, for a person."""
    if problem == "Missing required headers":
        return (
            "missing webhook-id, webhook-timestamp or webhook-signature header: "
            "is this delivery from Argilla?"
        )
    if problem.startswith("Message timestamp"):
        offset = int(time.time() - float(stamp or 0))
        return (
            f"webhook-timestamp is {offset} s away from this server's clock "
            f"(at most {TOLERANCE_S} s accepted)"
        )
    if problem == "Invalid Signature Headers":
        return f"webhook-timestamp is not a Unix time: {stamp!r}"
    return "the webhook signature does not match: check the webhook secret"
