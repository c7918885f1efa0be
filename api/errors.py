"""Every error the API answers, mapped to a status code in one place.

Each error body has the same shape, :class:`api.schemas.ErrorBody`:
``{"error": "<machine-readable code>", "detail": "<a sentence for a person>"}``; validation
errors add ``errors``, one entry per offending field. A server error (5xx) adds ``request_id``
(also the ``X-Request-ID`` header) and is logged under it; its detail never shows what failed
inside (file paths, exception text) unless it is one of the API's own errors, whose details
are written for clients.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.schemas import ErrorBody, FieldError
from loop.errors import (
    AlloopError,
    ConfigError,
    InputError,
    MessageError,
    ModelError,
    NothingToRollBack,
    RegistryError,
    VersionNotFound,
)

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class ApiError(AlloopError):
    """Root of the API's own errors; each subclass names its status code and error code."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    headers: ClassVar[Mapping[str, str] | None] = None


class Unauthorized(ApiError):
    """No API key, or not one of the configured keys."""

    status_code = 401
    code = "unauthorized"
    headers: ClassVar[Mapping[str, str] | None] = {"WWW-Authenticate": 'Bearer realm="alloop"'}


class NoModelServed(ApiError):
    """Nothing is promoted (or the promoted version could not be loaded)."""

    status_code = 503
    code = "no_model"


class NoEntityModel(ApiError):
    """No entity extractor is promoted and the task's patterns are off."""

    status_code = 503
    code = "no_entity_model"


class UnknownTask(ApiError):
    """A ``task`` that is neither classification nor the entity task."""

    status_code = 422
    code = "unknown_task"


class BatchTooLarge(ApiError):
    """More documents in one request than ``max_batch``."""

    status_code = 413
    code = "batch_too_large"


class TextTooLong(ApiError):
    """A document longer than ``max_text_chars``."""

    status_code = 422
    code = "text_too_long"


class ModelNotLoaded(ApiError):
    """The registry pointer moved, but the API could not load the version it points at."""

    status_code = 500
    code = "model_load_failed"


# Most specific first: the first class an error is an instance of decides.
_LOOP_ERRORS: tuple[tuple[type[AlloopError], int, str], ...] = (
    (VersionNotFound, 404, "version_not_found"),
    (NothingToRollBack, 409, "nothing_to_roll_back"),
    (RegistryError, 409, "registry_error"),
    (MessageError, 422, "invalid_message"),
    (InputError, 400, "invalid_input"),
    (ModelError, 500, "model_error"),
    (ConfigError, 500, "config_error"),
)


def status_of(exc: AlloopError) -> tuple[int, str]:
    """The status code and error code that answer ``exc``."""
    if isinstance(exc, ApiError):
        return exc.status_code, exc.code
    for kind, status, code in _LOOP_ERRORS:
        if isinstance(exc, kind):
            return status, code
    return 500, "internal_error"


def error_response(
    status: int,
    code: str,
    detail: str,
    *,
    errors: list[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
) -> JSONResponse:
    body = ErrorBody(error=code, detail=detail, errors=errors, request_id=request_id)
    answer_headers = dict(headers or {})
    if request_id is not None:
        answer_headers[REQUEST_ID_HEADER] = request_id
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=status, headers=answer_headers
    )


def request_id_of(request: Request) -> str:
    """The id a proxy gave the request (``X-Request-ID``, when it is a plain token), or a new
    one."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    return given if _CLIENT_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def internal_detail(request_id: str) -> str:
    return f"an internal error happened (request id {request_id}); the server log has the details"


# Error codes of the framework's own HTTP errors (api.limits raises the 413), fixed here so
# that they do not change with Python's wording of status phrases.
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


def _http_code(status: int) -> str:
    if status in _HTTP_CODES:
        return _HTTP_CODES[status]
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "http_error"


def _where(err: Mapping[str, Any]) -> str:
    """``documents.2.text`` for a body field; ``body`` for the body as a whole."""
    parts = [str(part) for part in err.get("loc", ())]
    if err.get("type") == "json_invalid":
        return "body"
    if parts[:1] == ["body"]:
        parts = parts[1:]
    return ".".join(parts) or "body"


def _field_errors(exc: RequestValidationError) -> list[FieldError]:
    # Never echo "input": it can be a whole document, or a key someone pasted by mistake.
    return [FieldError(loc=_where(err), msg=str(err.get("msg", ""))) for err in exc.errors()]


def _is_json(request: Request) -> bool:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")


def _validation_detail(request: Request, exc: RequestValidationError) -> str:
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            reason = (err.get("ctx") or {}).get("error", "")
            return f"the request body is not valid JSON: {reason}".rstrip(": ")
    fields = _field_errors(exc)
    detail = "; ".join(f"{field.loc}: {field.msg}" for field in fields) or "invalid request"
    if request.method in ("POST", "PUT", "PATCH") and not _is_json(request):
        detail += " (send the body as JSON, with 'Content-Type: application/json')"
    return detail


async def _on_alloop_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AlloopError)
    status, code = status_of(exc)
    headers = exc.headers if isinstance(exc, ApiError) else None
    if status < 500:
        return error_response(status, code, str(exc), headers=headers)
    request_id = request_id_of(request)
    logger.error(
        "%s %s failed (request id %s): %s", request.method, request.url.path, request_id, exc
    )
    # The API's own errors say what to do and name no file; any other may show internals.
    detail = str(exc) if isinstance(exc, ApiError) else internal_detail(request_id)
    return error_response(status, code, detail, headers=headers, request_id=request_id)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(
        422, "invalid_request", _validation_detail(request, exc), errors=_field_errors(exc)
    )


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return error_response(exc.status_code, _http_code(exc.status_code), detail, headers=exc.headers)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    request_id = request_id_of(request)
    logger.exception(
        "%s %s failed unexpectedly (request id %s): %s",
        request.method,
        request.url.path,
        request_id,
        exc,
    )
    return error_response(500, "internal_error", internal_detail(request_id), request_id=request_id)


def install(app: FastAPI) -> None:
    """Register the handlers that turn errors into :class:`ErrorBody` answers."""
    app.add_exception_handler(AlloopError, _on_alloop_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
