"""The moderated client methods: chat completions, legacy completions and the Responses API.

Each call: check the prompt side (a block makes no upstream call), call upstream (its errors
pass through unchanged), then check the result, or moderate the stream as it flows.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import replace as replace_fields
from typing import Any

from guardrail.middleware import _objects as objects
from guardrail.middleware import _texts as texts
from guardrail.middleware._context import Context
from guardrail.middleware._objects import GuardReport, attach, replace
from guardrail.middleware._redact import redact_kwargs, restore_result
from guardrail.middleware._stream import guard_stream, refusal_stream
from guardrail.middleware._texts import Extracted, UnguardedCallError, get
from guardrail.redaction import Vault
from guardrail.types import Verdict

__all__ = ["moderated"]


@dataclass(frozen=True)
class _Request:
    """One call, prepared: the arguments to send on and what to check."""

    kind: str  # chat | completion | responses
    kwargs: dict[str, Any]
    prompt_side: Extracted
    n: int
    stream: bool

    @property
    def model(self) -> str:
        model = self.kwargs.get("model")
        return model if isinstance(model, str) else "unknown"


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _prepare(ctx: Context, kind: str, kwargs: dict[str, Any]) -> _Request:
    opts = ctx.options
    if kind == "chat":
        if "messages" not in kwargs:
            raise UnguardedCallError(
                "chat completions need messages=... (by keyword) to be checked"
            )
        modalities = kwargs.get("modalities")
        if kwargs.get("stream") is True and isinstance(modalities, list) and "audio" in modalities:
            raise UnguardedCallError(
                "streamed audio output cannot be moderated (its transcript arrives with the "
                "audio); call without stream=True, where the transcript is checked"
            )
        messages = texts.check_sequence(kwargs["messages"], "messages")
        kwargs = {**kwargs, "messages": messages}
        side = texts.chat_prompt(messages, opts.prompt_messages, ctx.untrusted)
    elif kind == "completion":
        side = texts.completion_prompt(kwargs.get("prompt"), kwargs.get("suffix"))
    else:
        if kwargs.get("background") is True:
            raise UnguardedCallError(
                "background responses are fetched later, outside the wrapper, so they cannot "
                "be moderated; call responses.create without background=True"
            )
        server_state = any(
            isinstance(kwargs.get(k), str | dict) for k in ("previous_response_id", "conversation")
        )
        side = texts.responses_input(
            kwargs.get("input"),
            kwargs.get("instructions"),
            opts.prompt_messages,
            ctx.untrusted,
            server_state,
        )
        if kwargs.get("prompt") is not None:
            side.notes.append("a stored prompt template is not visible to the wrapper")
    n = 1 if kind == "responses" else _int(kwargs.get("n"), 1)
    return _Request(kind, kwargs, side, n, kwargs.get("stream") is True)


def _prompt_refusal(ctx: Context, request: _Request, report: GuardReport, is_async: bool) -> Any:
    message, model, n = ctx.refusal_message, request.model, request.n
    if request.kind == "chat":
        if request.stream:
            chunks = objects.chat_refusal_chunks(model, n, message)
            return refusal_stream(chunks, report, is_async)
        return attach(objects.chat_refusal(model, n, message), report)
    if request.kind == "completion":
        if request.stream:
            chunks = objects.completion_refusal_chunks(model, n, message)
            return refusal_stream(chunks, report, is_async)
        return attach(objects.completion_refusal(model, n, message), report)
    if request.stream:
        return refusal_stream(objects.response_refusal_events(model, message), report, is_async)
    return attach(objects.response_refusal(model, message), report)


def _groups(request: _Request, result: Any) -> list[Extracted]:
    if request.kind == "responses":
        return [texts.responses_output(result)]
    choices = get(result, "choices") or []
    extract = texts.chat_choice if request.kind == "chat" else texts.completion_choice
    return [extract(c) for c in choices]


def _finish(
    ctx: Context, request: _Request, result: Any, verdicts: list[Verdict], report: GuardReport
) -> Any:
    """Withhold blocked choices (refuse mode; raise mode raised already) and attach the report."""
    message = ctx.refusal_message
    if request.kind == "responses":
        if verdicts and verdicts[0].blocked:
            result = objects.response_refusal(request.model, message, base=result)
        return attach(result, report)
    if any(v.blocked for v in verdicts):
        refuse = (
            objects.refuse_chat_choice
            if request.kind == "chat"
            else objects.refuse_completion_choice
        )
        choices = [
            refuse(c, message) if v.blocked else c
            for c, v in zip(get(result, "choices"), verdicts, strict=True)
        ]
        result = replace(result, choices=choices)
    return attach(result, report)


def _redacted(ctx: Context, request: _Request, verdict: Verdict) -> tuple[_Request, Vault | None]:
    """The request with its texts redacted when the prompt's verdict says so."""
    if not verdict.redacted:
        return request, None
    kwargs, vault = redact_kwargs(ctx.guard, request.kind, request.kwargs)
    return replace_fields(request, kwargs=kwargs), vault


def _sync(ctx: Context, kind: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        request = _prepare(ctx, kind, kwargs)
        report = GuardReport()
        verdict = ctx.check_prompt(request.prompt_side, report)
        if verdict.blocked:
            return _prompt_refusal(ctx, request, report, is_async=False)
        request, vault = _redacted(ctx, request, verdict)
        result = method(*args, **request.kwargs)
        if request.stream:
            prompt = request.prompt_side.prompt
            return guard_stream(
                ctx, kind, result, prompt, report, request.n, request.model, vault=vault
            )
        groups = _groups(request, result)
        verdicts = ctx.check_choices(groups, request.prompt_side.prompt, report)
        finished = _finish(ctx, request, result, verdicts, report)
        return attach(restore_result(finished, vault), report) if vault else finished

    return call


def _async(ctx: Context, kind: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    async def call(*args: Any, **kwargs: Any) -> Any:
        request = _prepare(ctx, kind, kwargs)
        report = GuardReport()
        verdict = await ctx.acheck_prompt(request.prompt_side, report)
        if verdict.blocked:
            return _prompt_refusal(ctx, request, report, is_async=True)
        request, vault = _redacted(ctx, request, verdict)
        result = await method(*args, **request.kwargs)
        if request.stream:
            prompt = request.prompt_side.prompt
            return guard_stream(
                ctx, kind, result, prompt, report, request.n, request.model, vault=vault
            )
        groups = _groups(request, result)
        verdicts = await ctx.acheck_choices(groups, request.prompt_side.prompt, report)
        finished = _finish(ctx, request, result, verdicts, report)
        return attach(restore_result(finished, vault), report) if vault else finished

    return call


def moderated(ctx: Context, kind: str, method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` (a ``create``) wrapped with checks; ``kind`` is chat, completion or responses."""
    # openai decorates some async methods with sync wrappers, so look through them.
    if inspect.iscoroutinefunction(inspect.unwrap(method)):
        return _async(ctx, kind, method)
    return _sync(ctx, kind, method)
