"""``POST /v1/chat/completions`` and ``POST /v1/completions``, streaming and not.

The prompt is checked before anything is forwarded (a block is a 400 with the verdict); a
non-streaming response is checked before it is returned (a blocked choice becomes the policy's
refusal with ``finish_reason: "content_filter"``); streams go through ``stream.py``.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from guardrail.redaction import restore_payload
from guardrail.types import Role, Verdict

from .body import parse_body
from .errors import ProxyHTTPError
from .fields import moderated_texts
from .forwarding import Prepared, dumps, json_object, upstream_error
from .redact import redact_body
from .schemas import ChatCompletionRequest, CompletionRequest
from .service import ProxyService, guardrail_field
from .stream import stream_response
from .text import chat_prompt, completion_prompts, last_user_text

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
        chat_prompt(parsed_chat.model, allow_media=allow_media)  # refuses unreadable media
        # Every string of the request but the listed ones (fields.py), in document order.
        prompts = ["\n\n".join(moderated_texts("chat.request", parsed_chat.data))]
        context = last_user_text(parsed_chat.model)
        stream = bool(parsed_chat.model.stream)
    else:
        parsed = parse_body(raw, CompletionRequest)
        service.check_model(ctx, parsed.model.model)
        body = parsed.body
        prompts = completion_prompts(parsed.model)
        service.limit_inputs(prompts, "prompt")
        context = prompts[0] if len(prompts) == 1 else None
        rest = {k: v for k, v in parsed.data.items() if k not in ("prompt", "suffix")}
        if others := moderated_texts("completions.request", rest):
            prompts.append("\n\n".join(others))
        stream = bool(parsed.model.stream)
    checked = await service.check(ctx, prompts, Role.PROMPT, stage="pre_call")
    if checked.blocked:
        raise service.blocked_prompt(ctx, checked)
    shape = "chat.request" if chat else "completions.request"
    body, vault = await redact_body(ctx, body, checked, shape)
    headers = service.auth.upstream_headers(request.headers)
    return Prepared(ctx, body, headers, chat, stream, context, vault)


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
    # Each choice is checked on all its strings but the listed ones (fields.py): content,
    # reasoning, refusal, tool calls, annotations, audio transcript, fields not known yet.
    shape = "chat.answer" if prepared.chat else "completions.answer"
    texts = ["\n".join(moderated_texts(shape, c, "choices[]")) for c in choices]
    # Strings outside the choices (none in OpenAI's shape) are checked as one more text.
    outside = {k: v for k, v in payload.items() if k != "choices"}
    extra = moderated_texts(shape, outside)
    if extra:
        texts.append("\n".join(extra))
    checked = await service.check(
        ctx, texts, Role.RESPONSE, stage="post_call", prompts=[prepared.context] * len(texts)
    )
    headers = {**reply.headers, **service.headers(ctx)}
    if not checked.blocked and not prepared.vault:
        # Nothing to change: the upstream's bytes go back untouched.
        return Response(reply.content, media_type=reply.content_type, headers=headers)
    if prepared.vault:
        choices = restore_payload(choices, prepared.vault.restore)
        payload["choices"] = choices
    if not checked.blocked:
        return Response(dumps(payload), media_type="application/json", headers=headers)
    refusal = ctx.guard.policy.refusal_message
    verdicts = checked.verdicts
    if extra and verdicts[-1].blocked:
        # Blocked text outside the choices: drop those fields, and refuse every choice.
        for key in [k for k in outside if moderated_texts(shape, {k: outside[k]})]:
            payload.pop(key)
        verdicts = [verdicts[-1]] * len(choices)
    payload["choices"] = _refuse(choices, verdicts[: len(choices)], refusal, chat=prepared.chat)
    payload["guardrail"] = guardrail_field(checked.verdicts, "post_call")
    return Response(dumps(payload), media_type="application/json", headers=headers)


def _refuse(choices: list[Any], verdicts: list[Verdict], refusal: str, *, chat: bool) -> list[Any]:
    """New choices with each blocked one replaced by the refusal: nothing of the blocked choice
    is kept but its index (no logprobs, reasoning or other fields that could spell it)."""
    out: list[Any] = []
    for i, (choice, verdict) in enumerate(zip(choices, verdicts, strict=True)):
        if not verdict.blocked:
            out.append(choice)
            continue
        index = choice.get("index", i) if isinstance(choice, dict) else i
        new: dict[str, Any] = {"index": index, "finish_reason": "content_filter", "logprobs": None}
        if chat:
            new["message"] = {"role": "assistant", "content": refusal, "refusal": None}
        else:
            new["text"] = refusal
        out.append(new)
    return out
