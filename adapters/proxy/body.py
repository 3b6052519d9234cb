"""Reading request bodies: a size limit enforced while reading, and OpenAI-shaped 400s.

FastAPI has no body size limit, and its validation errors are 422 ``{"detail": ...}``; the
proxy reads bodies itself so that an oversized body is cut off at the limit (413) and bad JSON
or a wrong schema is a 400 in OpenAI's error shape.
"""

from __future__ import annotations

from typing import TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from .errors import ProxyHTTPError

__all__ = ["parse_body", "read_body"]

M = TypeVar("M", bound=BaseModel)


def _too_large(limit: int) -> ProxyHTTPError:
    return ProxyHTTPError(
        413, f"Request body is larger than the limit of {limit} bytes.", code="request_too_large"
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, read chunk by chunk and abandoned as soon as it passes ``limit``.

    Raises:
        ProxyHTTPError: 413 when the declared or actual size exceeds the limit; 400 for a
            malformed Content-Length.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ProxyHTTPError(400, "Malformed Content-Length header.", code="invalid_request")
        if int(declared) > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_body(body: bytes, model: type[M]) -> M:
    """Parse and validate a JSON body.

    Raises:
        ProxyHTTPError: 400 with OpenAI's error shape, naming the field at fault.
    """
    if not body.strip():
        raise ProxyHTTPError(400, "The request body is empty; expected JSON.", code="invalid_json")
    try:
        return model.model_validate_json(body)
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        if first["type"] == "json_invalid":
            raise ProxyHTTPError(
                400, f"The request body is not valid JSON: {first['msg']}", code="invalid_json"
            ) from e
        loc = ".".join(str(p) for p in first["loc"])
        count = e.error_count()
        more = f" (and {count - 1} more errors)" if count > 1 else ""
        raise ProxyHTTPError(
            400,
            f"Invalid request: {loc or 'body'}: {first['msg']}{more}",
            code="invalid_request",
            param=loc or None,
        ) from e
