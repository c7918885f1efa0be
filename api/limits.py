"""The request-body size limit, enforced while the body is read.

The middleware wraps ``receive``: the first read checks ``Content-Length`` (an honest
oversized request is refused before a byte of it is read), and every read counts the bytes
that actually arrive (a chunked body, or one longer than it declared, is refused as soon as it
passes the limit). The refusal is an :class:`HTTPException`, which FastAPI lets through its
body parsing; it reaches the error handlers after routing, so the 413 has the usual error body
and is counted under the endpoint it was sent to. Endpoints that never read a body are not
affected.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimitMiddleware:
    """Refuses (413) an HTTP request body larger than ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> HTTPException:
        return HTTPException(
            413,
            f"the request body is larger than the limit of {self.max_bytes} bytes "
            "(ALLOOP_API__MAX_BODY_BYTES)",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            if declared is not None and declared > self.max_bytes:
                raise self._too_large()
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large()
            return message

        await self.app(scope, limited_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server rejects it; the bytes are counted anyway
    return None
