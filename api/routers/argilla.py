"""POST /v1/argilla/webhooks: Argilla's answers in, label events out, at once.

The handler checks the signature, turns a ``response.created`` / ``response.updated``
delivery into a label event, writes it to the ``labels`` topic and answers. No training
happens here: the trainer reads the topic. A re-delivered event writes the same label event
again, which the label store ignores (keyed by the response id).
"""

from __future__ import annotations

import json
import logging
import sqlite3

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.deps import State
from api.errors import ApiError
from api.schemas import WebhookAccepted
from api.state import AppState
from api.webhooks import ReplayedDelivery, WebhooksOff, verify
from connectors.argilla.answers import from_webhook
from loop.errors import AlloopError, InputError
from loop.messages import LabelEvent
from loop.settings import Settings

logger = logging.getLogger(__name__)

router = APIRouter(tags=["argilla"])


def webhook_secret(settings: Settings) -> str | None:
    """The configured secret, else the one the local stack registered its webhook with."""
    if settings.argilla.webhook_secret is not None:
        return settings.argilla.webhook_secret.get_secret_value()
    from stack.credentials import ArgillaCredentials

    try:
        return ArgillaCredentials.load(settings.state_dir).webhook_secret
    except AlloopError:
        return None


class LabelsUnavailable(ApiError):
    """The label event could not be written; Argilla will deliver it again."""

    status_code = 503
    code = "labels_unavailable"


@router.post(
    "/v1/argilla/webhooks",
    summary="Receive Argilla's webhook deliveries",
    description="Register this URL in Argilla for `response.created` and `response.updated` "
    "(`record.completed` is acknowledged and ignored: it carries no answer). Deliveries must "
    "carry a valid Standard Webhooks signature made with `ALLOOP_ARGILLA__WEBHOOK_SECRET` (no "
    "API key needed). Answers 200 once the label event is on the `labels` topic, 400 with the "
    "reason for a delivery that cannot be read, 409 for a webhook-id already processed, 503 "
    "when the event could not be written (Argilla retries).",
)
async def receive(request: Request, state: State) -> WebhookAccepted:
    secret = webhook_secret(state.settings)
    if secret is None:
        raise WebhooksOff(
            "no webhook secret is configured (ALLOOP_ARGILLA__WEBHOOK_SECRET, or the local "
            "stack's Argilla)"
        )
    body = await request.body()
    delivery = verify(secret, request.headers, body)
    stamp = float(request.headers["webhook-timestamp"])
    try:
        log = state.delivery_log()
        claimed = await run_in_threadpool(log.claim, delivery, stamp)
    except sqlite3.Error as exc:
        logger.error("webhook %s: cannot read the processed deliveries: %s", delivery, exc)
        raise LabelsUnavailable(f"the label database cannot be read: {exc}") from exc
    if not claimed:
        logger.warning("webhook %s: refused, already processed (a replay?)", delivery)
        raise ReplayedDelivery(
            f"the delivery {delivery} was already processed; a new delivery has a new webhook-id"
        )
    try:
        answer = await _record(state, delivery, body)
    except BaseException:
        log.release(delivery)  # not processed: the sender may try this id again
        raise
    try:
        await run_in_threadpool(log.done, delivery, stamp)
    except sqlite3.Error as exc:  # the answer is on its way; only a replay check is missed
        logger.error("webhook %s: processed, but its id could not be stored: %s", delivery, exc)
    return answer


def _event_of(state: AppState, body: bytes) -> tuple[str, LabelEvent | None]:
    """The delivery's event type and label event; InputError when it cannot be read."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InputError(f"the delivery is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise InputError("the delivery is not a JSON object")
    settings = state.settings
    try:
        event = from_webhook(payload, settings.argilla.dataset_prefix, settings.entity_tasks)
    except InputError:
        raise
    except Exception as exc:  # any shape alloop did not expect: a 400 with the reason, not a 500
        raise InputError(f"the delivery cannot be read: {type(exc).__name__}: {exc}") from None
    return str(payload.get("type")), event


async def _record(state: AppState, delivery: str, body: bytes) -> WebhookAccepted:
    try:
        event_type, event = _event_of(state, body)
    except InputError as exc:
        logger.warning("webhook %s: refused: %s", delivery, exc)
        raise
    if event is None:
        logger.debug("webhook %s (%s): nothing to record", delivery, event_type)
        return WebhookAccepted(delivery=delivery, event=event_type, labels=0)
    try:
        await run_in_threadpool(state.labels_sink().publish, [event])
    except Exception as exc:
        logger.error("webhook %s: cannot write the label event: %s", delivery, exc)
        raise LabelsUnavailable(f"the label event could not be written: {exc}") from exc
    state.metrics.labels_received.labels(status=event.status).inc()
    for reason in event.rejected:
        logger.warning(
            "webhook %s: document %s: rejected %s (the rest of the answer is kept)",
            delivery,
            event.id,
            reason,
        )
    logger.info(
        "webhook %s: %s %s on document %s (response %s)",
        delivery,
        event.status,
        event.label if event.spans is None else f"{len(event.spans)} span(s)",
        event.id,
        event.response_id,
    )
    return WebhookAccepted(
        delivery=delivery, event=event_type, labels=1, rejected=list(event.rejected)
    )
