"""Errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.

Handlers raise ``ProxyHTTPError``; one exception handler turns it (and FastAPI's own errors)
into a JSON response of that shape, so no client ever sees FastAPI's ``{"detail": ...}``.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from guardrail.errors import GuardrailError

__all__ = ["ProxyHTTPError", "error_body", "error_response"]

# HTTP status -> OpenAI's error type
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    502: "upstream_error",
    503: "server_error",
    504: "upstream_timeout",
}


class ProxyHTTPError(GuardrailError):
    """An error the proxy answers with, in OpenAI's error shape.

    Attributes:
        status: HTTP status code.
        message: human-readable message (never contains secrets).
        code: OpenAI-style error code (``content_filter``, ``invalid_api_key``, ...).
        param: the request field at fault, when there is one.
        extra: more top-level keys for the body (e.g. the verdict under ``guardrail``).
        headers: response headers to add.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        type_: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.type = type_ or _TYPES.get(status, "invalid_request_error")
        self.extra = extra or {}
        self.headers = headers or {}


def error_body(
    message: str,
    *,
    type_: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
) -> dict[str, Any]:
    """The ``{"error": {...}}`` body."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_response(error: ProxyHTTPError) -> JSONResponse:
    """The JSON response for a ``ProxyHTTPError``."""
    body = error_body(error.message, type_=error.type, code=error.code, param=error.param)
    body.update(error.extra)
    return JSONResponse(body, status_code=error.status, headers=error.headers)
