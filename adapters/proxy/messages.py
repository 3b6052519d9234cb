"""``POST /v1/messages``: Anthropic's Messages API, forwarded to an Anthropic-compatible upstream.

Moderated like chat completions: the system prompt, every message (user turns, tool results,
earlier assistant turns and their tool calls) before the call (a block is a 400 in Anthropic's
error shape, with the verdict); text, tool_use input and thinking blocks after it. A blocked
answer is a normal Messages response whose content is the policy's refusal, with
``stop_reason: "refusal"`` and ``stop_details`` saying which policy and categories blocked it,
plus the verdict under ``guardrail``. Streams go through ``messages_stream``.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from guardrail.types import Action, Role

from ._messages_text import (
    MessagesRequest,
    blocks_text,
    last_user_text,
    messages_prompt,
    refusal_details,
    refusal_message,
)
from .body import parse_body
from .errors import ProxyHTTPError
from .forwarding import dumps, json_object, upstream_error
from .messages_stream import stream_messages
from .service import ProxyService, guardrail_field

__all__ = ["handle_messages"]

ROUTE = "/v1/messages"


async def handle_messages(service: ProxyService, request: Request) -> Response:
    """``POST /v1/messages``, streamed or not."""
    ctx, raw = await service.start(request, ROUTE)
    request_body = parse_body(raw, MessagesRequest)
    parsed, body = request_body.model, request_body.body  # what is checked is what is sent
    service.check_model(ctx, parsed.model)
    prompt = messages_prompt(parsed, allow_media=service.settings.allow_media)
    checked = await service.check(ctx, [prompt], Role.PROMPT, stage="pre_call")
    if checked.blocked:
        raise service.blocked_prompt(ctx, checked)
    if checked.action is Action.REDACT:
        # This route does not rewrite Anthropic bodies yet: refuse rather than forward the values.
        raise service.unredacted_prompt(ctx, checked)
    headers = service.auth.anthropic_headers(request.headers)
    context = last_user_text(parsed)
    if parsed.stream:
        return await stream_messages(service, ctx, headers, body, context)
    reply = await service.anthropic.request(
        "POST", "/messages", route=ctx.route, headers=headers, content=body
    )
    ctx.upstream_s = reply.seconds
    if not reply.ok:
        return upstream_error(service, ctx, reply)
    payload = json_object(reply.content)
    content = payload.get("content")
    if not isinstance(content, list):
        raise ProxyHTTPError(
            502, "The upstream API returned a message without content.", code="upstream_invalid"
        )
    text = "\n".join(blocks_text(content, allow_media=True, param="content"))
    checked = await service.check(ctx, [text], Role.RESPONSE, stage="post_call", prompts=[context])
    out_headers = {**reply.headers, **service.headers(ctx)}
    if not checked.blocked:
        # Nothing to change: the upstream's bytes go back untouched.
        return Response(reply.content, media_type=reply.content_type, headers=out_headers)
    refused = refusal_message(payload, ctx.guard.policy.refusal_message)
    refused["stop_details"] = refusal_details(checked.verdicts)
    refused["guardrail"] = guardrail_field(checked.verdicts, "post_call")
    return Response(dumps(refused), media_type="application/json", headers=out_headers)
