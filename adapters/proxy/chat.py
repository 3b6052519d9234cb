"""``POST /v1/chat/completions`` and ``POST /v1/completions``, streaming and not.

The prompt is checked before anything is forwarded (a block is a 400 with the verdict); a
non-streaming response is checked before it is returned (a blocked choice becomes the policy's
refusal with ``finish_reason: "content_filter"``); streams go through ``stream.py``.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from guardrail.types import Role

from .body import parse_body
from .errors import ProxyHTTPError
from .forwarding import Prepared, dumps, json_object, upstream_error
from .schemas import ChatCompletionRequest, CompletionRequest
from .service import Checked, ProxyService, guardrail_field
from .stream import stream_response
from .text import (
    chat_choice_text,
    chat_prompt,
    completion_choice_text,
    completion_prompts,
    last_user_text,
)

__all__ = ["Prepared", "handle_chat", "handle_completions", "prepare", "upstream_error"]


async def prepare(service: ProxyService, request: Request, route: str, *, chat: bool) -> Prepared:
    """Authenticate, read, validate and check the prompt of a (chat) completions request.

    Raises:
        ProxyHTTPError: 401, 413, 400 (bad body, disallowed policy, blocked prompt).
    """
    ctx, raw = await service.start(request, route)
    allow_media = service.settings.allow_media
    if chat:
        parsed_chat = parse_body(raw, ChatCompletionRequest)
        service.check_model(ctx, parsed_chat.model.model)
        body = parsed_chat.body
        prompts = [chat_prompt(parsed_chat.model, allow_media=allow_media)]
        context = last_user_text(parsed_chat.model)
        stream = bool(parsed_chat.model.stream)
    else:
        parsed = parse_body(raw, CompletionRequest)
        service.check_model(ctx, parsed.model.model)
        body = parsed.body
        prompts = completion_prompts(parsed.model)
        service.limit_inputs(prompts, "prompt")
        context = prompts[0] if len(prompts) == 1 else None
        stream = bool(parsed.model.stream)
    checked = await service.check(ctx, prompts, Role.PROMPT, stage="pre_call")
    if checked.blocked:
        raise service.blocked_prompt(ctx, checked)
    headers = service.auth.upstream_headers(request.headers)
    return Prepared(ctx, body, headers, chat, stream, context)


async def handle_chat(service: ProxyService, request: Request) -> Response:
    """``POST /v1/chat/completions``."""
    prepared = await prepare(service, request, "/v1/chat/completions", chat=True)
    return await _forward(service, prepared, "/chat/completions")


async def handle_completions(service: ProxyService, request: Request) -> Response:
    """``POST /v1/completions``."""
    prepared = await prepare(service, request, "/v1/completions", chat=False)
    return await _forward(service, prepared, "/completions")


async def _forward(service: ProxyService, prepared: Prepared, path: str) -> Response:
    if prepared.stream:
        return await stream_response(service, prepared, path)
    ctx = prepared.ctx
    reply = await service.post(ctx, path, prepared.headers, prepared.body)
    if not reply.ok:
        return upstream_error(service, ctx, reply)
    payload = json_object(reply.content)
    choices = payload.get("choices")
    if not isinstance(choices, list):
        raise ProxyHTTPError(
            502, "The upstream API returned a response without choices.", code="upstream_invalid"
        )
    text_of = chat_choice_text if prepared.chat else completion_choice_text
    texts = [text_of(c) if isinstance(c, dict) else "" for c in choices]
    checked = await service.check(
        ctx, texts, Role.RESPONSE, stage="post_call", prompts=[prepared.context] * len(texts)
    )
    headers = {**reply.headers, **service.headers(ctx)}
    if not checked.blocked:
        # Nothing to change: the upstream's bytes go back untouched.
        return Response(reply.content, media_type=reply.content_type, headers=headers)
    refusal = ctx.guard.policy.refusal_message
    payload["choices"] = _refuse(choices, checked, refusal, chat=prepared.chat)
    payload["guardrail"] = guardrail_field(checked.verdicts, "post_call")
    return Response(dumps(payload), media_type="application/json", headers=headers)


def _refuse(choices: list[Any], checked: Checked, refusal: str, *, chat: bool) -> list[Any]:
    """New choices with each blocked one replaced by the refusal."""
    out: list[Any] = []
    for choice, verdict in zip(choices, checked.verdicts, strict=True):
        if not verdict.blocked or not isinstance(choice, dict):
            out.append(choice)
            continue
        new = {**choice, "finish_reason": "content_filter"}
        if chat:
            new["message"] = {"role": "assistant", "content": refusal, "refusal": None}
        else:
            new["text"] = refusal
            new.pop("logprobs", None)
        out.append(new)
    return out
