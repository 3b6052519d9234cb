"""Reading request bodies: a size limit and a time limit enforced while reading, one JSON
parse, and OpenAI-shaped 400s.

FastAPI has no body size or time limit, and its validation errors are 422 ``{"detail": ...}``;
the proxy reads bodies itself so that an oversized body is cut off at the limit (413), a body
that does not arrive in time is a 408, and bad JSON or a wrong schema is a 400 in OpenAI's
error shape.

What is checked is what is sent: the body is parsed once (duplicate object keys and
non-standard numbers such as ``NaN`` are refused with 400, since parsers disagree on them), the
texts to moderate are read from that parse, and the upstream gets the proxy's own serialisation
of it, never the caller's bytes.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect

from .errors import ProxyHTTPError

__all__ = ["ClientGone", "Parsed", "dumps", "parse_body", "read_body"]

M = TypeVar("M", bound=BaseModel)


def _too_large(limit: int) -> ProxyHTTPError:
    return ProxyHTTPError(
        413, f"Request body is larger than the limit of {limit} bytes.", code="request_too_large"
    )


class ClientGone(Exception):
    """The client disconnected before its request body was complete (nobody to answer)."""


async def read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    """The request body, read chunk by chunk and abandoned as soon as it passes ``limit`` or
    takes longer than ``timeout_s`` in all.

    Raises:
        ProxyHTTPError: 413 when the declared or actual size exceeds the limit; 400 for a
            malformed Content-Length; 408 when the body does not arrive in time.
        ClientGone: the client disconnected mid-body.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ProxyHTTPError(400, "Malformed Content-Length header.", code="invalid_request")
        if int(declared) > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
    except TimeoutError:
        raise ProxyHTTPError(
            408,
            f"The request body did not arrive within {timeout_s:g} s.",
            code="request_timeout",
            headers={"connection": "close"},
        ) from None
    except ClientDisconnect:
        raise ClientGone() from None
    return b"".join(chunks)


@dataclass(frozen=True, slots=True)
class Parsed(Generic[M]):
    """A parsed request: the validated model, the JSON object it came from, and the bytes to
    send upstream (the proxy's serialisation of that object)."""

    model: M
    data: dict[str, Any]
    body: bytes


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f"duplicate key {key!r} in a JSON object", "duplicate_key")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number", "invalid_json")


class _Refused(ValueError):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def dumps(payload: Any) -> bytes:
    """Compact JSON bytes (UTF-8; lone surrogates, which UTF-8 cannot carry, as escapes)."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode()
    except UnicodeEncodeError:
        return json.dumps(payload, separators=(",", ":")).encode()


def parse_body(body: bytes, model: type[M]) -> Parsed[M]:
    """Parse and validate a JSON body.

    Raises:
        ProxyHTTPError: 400 with OpenAI's error shape, naming the field at fault; duplicate
            keys are ``duplicate_key``.
    """
    if not body.strip():
        raise ProxyHTTPError(400, "The request body is empty; expected JSON.", code="invalid_json")
    try:
        text = body.decode("utf-8")
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except _Refused as e:
        raise ProxyHTTPError(400, f"The request body is refused: {e}.", code=e.code) from None
    except (ValueError, RecursionError) as e:
        # UnicodeDecodeError and JSONDecodeError are ValueErrors.
        raise ProxyHTTPError(
            400, f"The request body is not valid JSON: {e}", code="invalid_json"
        ) from None
    if not isinstance(data, dict):
        raise ProxyHTTPError(
            400,
            f"Invalid request: body: expected a JSON object, got {type(data).__name__}",
            code="invalid_request",
        )
    try:
        parsed = model.model_validate(data)
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in first["loc"])
        count = e.error_count()
        more = f" (and {count - 1} more errors)" if count > 1 else ""
        raise ProxyHTTPError(
            400,
            f"Invalid request: {loc or 'body'}: {first['msg']}{more}",
            code="invalid_request",
            param=loc or None,
        ) from e
    try:
        forwarded = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:
        raise ProxyHTTPError(
            400,
            "The request body is not valid JSON: it has a lone surrogate escape (\\ud800-\\udfff "
            "without its pair), which is not text.",
            code="invalid_json",
        ) from None
    return Parsed(parsed, data, forwarded)
