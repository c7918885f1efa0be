"""Waiting out outages: a broker or Argilla that cannot be reached makes a worker wait and
retry with exponential backoff, never exit.

Only outages are retried: a Kafka error the client marks retriable (timeouts, lost
connections, no coordinator), a failed connection or timeout towards Argilla, or an answer
5xx / 408 / 429. Anything else (a refused key, a bug, a bad setting) is the worker's own fault
and still raises. Nothing is committed while a step is retried: the caller commits only after
the step succeeded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import httpx
from kafka.errors import KafkaError

from loop.settings import Settings

logger = logging.getLogger(__name__)

T = TypeVar("T")

RETRIED_STATUS = frozenset({408, 429})


class Stoppable(Protocol):
    """What a retry waits on: true once the worker was asked to stop (a ``StopFlag``)."""

    def __bool__(self) -> bool: ...

    def wait(self, seconds: float) -> bool: ...


class Interrupted(Exception):
    """A stop signal came while waiting out an outage: the step was not done."""


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with a cap: ``initial_s``, then times ``factor``, at most ``max_s``."""

    initial_s: float = 0.5
    max_s: float = 30.0
    factor: float = 2.0

    def delay(self, attempt: int) -> float:
        """The wait after the ``attempt``-th failure in a row (1 for the first)."""
        exponent = min(max(attempt - 1, 0), 64)  # no float overflow however long it lasts
        return float(min(self.max_s, self.initial_s * self.factor**exponent))


def outage(exc: BaseException) -> str | None:
    """Which service ``exc`` says is unreachable or failing ("the broker", "Argilla"), or
    None when it is not an outage (the worker's own fault)."""
    if isinstance(exc, KafkaError):
        return "the broker" if exc.retriable else None
    if isinstance(exc, httpx.TransportError):
        return "Argilla"
    status = getattr(exc, "status_code", None)
    if status is None and isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
    if isinstance(status, int) and (status >= 500 or status in RETRIED_STATUS):
        return "Argilla"
    if isinstance(exc, ConnectionError | TimeoutError):
        return "a service"
    return None


def describe(exc: BaseException) -> str:
    """The exception on one short line (no traceback, no request bodies)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def retry_outages(
    action: Callable[[], T],
    stop: Stoppable,
    backoff: Backoff,
    what: str,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """``action()``, again and again while it fails with an outage, waiting ``backoff``
    between tries; one log line per failure and one when the service is back. Raises
    :class:`Interrupted` if ``stop`` is set while waiting, and whatever is not an outage."""
    attempt = 0
    first_failure = 0.0
    while True:
        try:
            result = action()
        except Interrupted:
            raise
        except Exception as exc:
            service = outage(exc)
            if service is None:
                raise
            attempt += 1
            if attempt == 1:
                first_failure = clock()
            delay = backoff.delay(attempt)
            logger.warning(
                "%s unreachable while %s (%s): nothing committed, retry %d in %.1fs",
                service,
                what,
                describe(exc),
                attempt,
                delay,
            )
            if stop or stop.wait(delay):
                raise Interrupted(what) from exc
            continue
        if attempt:
            logger.info(
                "back after %.0fs and %d failed tries: %s done, going on",
                clock() - first_failure,
                attempt,
                what,
            )
        return result


def backoff_of(settings: Settings) -> Backoff:
    """The backoff ``ALLOOP_RETRY__*`` configures."""
    return Backoff(settings.retry.initial_s, settings.retry.max_s, settings.retry.factor)
