"""POST /v1/argilla/webhooks: Argilla's answers in, label events out, at once.

The handler checks the signature, turns a ``response.created`` / ``response.updated``
delivery into a label event, writes it to the ``labels`` topic and answers. No training
happens here: the trainer reads the topic. A re-delivered event writes the same label event
again, which the label store ignores (keyed by the response id).
"""

from __future__ import annotations

import json
import logging

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.deps import State
from api.errors import ApiError
from api.schemas import WebhookAccepted
from api.webhooks import WebhooksOff, verify
from loop.errors import AlloopError, InputError
from loop.settings import Settings
from workers.argilla_labels import from_webhook

logger = logging.getLogger(__name__)

router = APIRouter(tags=["argilla"])


def webhook_secret(settings: Settings) -> str | None:
    """The configured secret, else the one the local stack registered its webhook with."""
    if settings.argilla.webhook_secret is not None:
        return settings.argilla.webhook_secret.get_secret_value()
    from workers.stack import ArgillaCredentials

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
    "(`record.completed` is acknowledged and ignored: it carries no answer). Deliveries must carry a valid Standard Webhooks signature made with "
    "`ALLOOP_ARGILLA__WEBHOOK_SECRET` (no API key needed). Answers 200 once the label event is "
    "on the `labels` topic, 503 when it could not be written (Argilla retries).",
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
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"the delivery is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise InputError("the delivery is not a JSON object")
    event_type = str(payload.get("type"))
    event = from_webhook(
        payload, state.settings.argilla.dataset_prefix, state.settings.entity_tasks
    )
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
