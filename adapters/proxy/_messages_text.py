"""Anthropic Messages API: the text in requests and responses, its errors and its refusals.

Every content block that carries text is read: text, tool_use input (as JSON), tool_result
content, thinking, and the string fields of block types this module does not know (so a new
block type is checked, not skipped). Images and documents are refused unless the settings allow
media; ``redacted_thinking`` is opaque (encrypted by the model's provider) and has no text.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from guardrail.types import Verdict

from .errors import ProxyHTTPError
from .service import fired_categories

__all__ = [
    "MessagesRequest",
    "anthropic_error_body",
    "anthropic_error_response",
    "block_text",
    "blocks_text",
    "last_user_text",
    "messages_prompt",
    "refusal_details",
]

_MEDIA = {"image", "document", "container_upload"}
_OPAQUE = {"redacted_thinking"}
# Keys of unknown blocks that hold ids, signatures or settings rather than text.
_NOT_TEXT = {"type", "id", "tool_use_id", "signature", "cache_control", "citations", "media_type"}

# HTTP status -> Anthropic's error type
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    502: "api_error",
    503: "api_error",
    504: "timeout_error",
}

_OPEN = ConfigDict(extra="allow")


class AnthropicMessage(BaseModel):
    """One message of a Messages request."""

    model_config = _OPEN

    role: str = Field(description="user or assistant.")
    content: str | list[dict[str, Any]] = Field(description="Text or content blocks.")


class MessagesRequest(BaseModel):
    """``POST /v1/messages`` (Anthropic's Messages API): fields the proxy reads."""

    model_config = _OPEN

    model: str = Field(description="Model name, passed upstream.")
    messages: list[AnthropicMessage] = Field(min_length=1, description="The conversation.")
    system: str | list[dict[str, Any]] | None = Field(None, description="System prompt.")
    max_tokens: int = Field(ge=1, description="Most tokens to generate.")
    stream: bool | None = Field(None, description="Stream the answer as server-sent events.")


def _media_error(param: str, kind: str) -> ProxyHTTPError:
    return ProxyHTTPError(
        400,
        f"{param}: content of type {kind!r} cannot be moderated by this proxy's text classifier; "
        "send text only (or set GUARDRAIL_ALLOW_MEDIA=true to forward media unmoderated).",
        code="unsupported_content",
        param=param,
    )


def block_text(block: Any, *, allow_media: bool = True, param: str = "content") -> list[str]:
    """The texts of one content block (or a plain string).

    Raises:
        ProxyHTTPError: an image or document block, unless ``allow_media``.
    """
    if isinstance(block, str):
        return [block]
    if isinstance(block, list):
        return blocks_text(block, allow_media=allow_media, param=param)
    if not isinstance(block, dict):
        return []
    kind = block.get("type")
    if kind in _MEDIA:
        if not allow_media:
            raise _media_error(param, str(kind))
        return []
    if kind in _OPAQUE:
        return []
    if kind == "text":
        return [block["text"]] if isinstance(block.get("text"), str) else []
    if kind == "thinking":
        return [block["thinking"]] if isinstance(block.get("thinking"), str) else []
    if kind in ("tool_use", "server_tool_use"):
        name = block.get("name")
        return [name if isinstance(name, str) else "", _json(block.get("input"))]
    if kind == "tool_result":
        return block_text(block.get("content"), allow_media=allow_media, param=f"{param}.content")
    # Anything else: every string in it that is not an id or a setting.
    texts: list[str] = []
    for key, value in block.items():
        if key in _NOT_TEXT:
            continue
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, (list, dict)):
            texts += block_text(value, allow_media=allow_media, param=f"{param}.{key}")
    return texts


def blocks_text(blocks: Sequence[Any], *, allow_media: bool, param: str) -> list[str]:
    """The texts of a list of content blocks."""
    texts: list[str] = []
    for i, block in enumerate(blocks):
        texts += block_text(block, allow_media=allow_media, param=f"{param}.{i}")
    return [t for t in texts if t]


def _json(value: Any) -> str:
    if value is None or value == {}:
        return ""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def messages_prompt(request: MessagesRequest, *, allow_media: bool) -> str:
    """The system prompt and every message (user turns, tool results, earlier assistant turns
    with their tool calls) as one text.

    Raises:
        ProxyHTTPError: a media block, unless ``allow_media``.
    """
    texts = block_text(request.system or [], allow_media=allow_media, param="system")
    for i, message in enumerate(request.messages):
        texts += block_text(message.content, allow_media=allow_media, param=f"messages.{i}.content")
    return "\n\n".join(t for t in texts if t)


def last_user_text(request: MessagesRequest) -> str | None:
    """The last user message's text: the context the answer is checked against."""
    for message in reversed(request.messages):
        if message.role == "user":
            return "\n".join(block_text(message.content)) or None
    return None


def refusal_details(verdicts: Sequence[Verdict]) -> dict[str, Any]:
    """Anthropic's ``stop_details`` for a guardrail block: why the answer was cut."""
    policy = max(verdicts, key=lambda v: v.action.severity).policy
    fired = ", ".join(fired_categories(verdicts)) or "unsafe"
    return {
        "type": "refusal",
        "category": None,
        "explanation": f"Blocked by the guardrail policy {policy!r} ({fired}).",
    }


def refusal_message(payload: dict[str, Any], refusal: str) -> dict[str, Any]:
    """A complete ``message`` object answering with the refusal (non-streaming replies)."""
    return {
        "id": payload.get("id") or f"msg_guardrail_{uuid.uuid4().hex}",
        "type": "message",
        "role": "assistant",
        "model": payload.get("model"),
        "content": [{"type": "text", "text": refusal}],
        "stop_reason": "refusal",
        "stop_sequence": None,
        "usage": payload.get("usage") or {"input_tokens": 0, "output_tokens": 0},
    }


def anthropic_error_body(
    message: str, *, status: int, code: str | None = None, type_: str | None = None
) -> dict[str, Any]:
    """``{"type": "error", "error": {"type", "message"}}``, Anthropic's error shape (with the
    proxy's error code as an extra ``code``)."""
    kind = type_ or _TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message, "code": code}}


def anthropic_error_response(error: ProxyHTTPError) -> JSONResponse:
    """The Anthropic-shaped response for a ``ProxyHTTPError`` on ``/v1/messages``."""
    body = anthropic_error_body(error.message, status=error.status, code=error.code)
    body.update(error.extra)
    return JSONResponse(body, status_code=error.status, headers=error.headers)
