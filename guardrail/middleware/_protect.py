"""``@guard.protect``: the wrapper's semantics for any ``prompt -> str`` function.

Sync and async functions have their prompt checked before the call and their result after it.
Generators (sync and async) stream through a ``StreamModerator``: pieces are released only after
a passing check. A block raises ``ContentBlocked``, or with ``on_block="refuse"`` returns (or,
for generators, yields as the last piece) the policy's refusal message.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from guardrail.errors import ContentBlocked
from guardrail.middleware._context import Context
from guardrail.middleware._objects import GuardReport
from guardrail.middleware._texts import Extracted, Piece
from guardrail.redaction import Vault
from guardrail.streaming import StreamStep
from guardrail.types import Role, Verdict

__all__ = ["protect_function"]


def _prompt_getter(fn: Callable[..., Any]) -> Callable[[tuple[Any, ...], dict[str, Any]], str]:
    signature = inspect.signature(fn)
    names = [n for n in signature.parameters if n not in ("self", "cls")]
    name = "prompt" if "prompt" in names else (names[0] if names else None)
    if name is None:
        raise TypeError(f"{fn.__name__} takes no argument to use as the prompt")

    def prompt_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        value = signature.bind_partial(*args, **kwargs).arguments.get(name)
        if not isinstance(value, str):
            raise TypeError(
                f"{fn.__name__}: the prompt argument {name!r} must be a str, "
                f"not {type(value).__name__}"
            )
        return value

    return prompt_of


def _prompt_setter(fn: Callable[..., Any]) -> Callable[..., tuple[tuple[Any, ...], dict[str, Any]]]:
    signature = inspect.signature(fn)
    names = [n for n in signature.parameters if n not in ("self", "cls")]
    name = "prompt" if "prompt" in names else names[0]

    def with_prompt(
        args: tuple[Any, ...], kwargs: dict[str, Any], prompt: str
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        bound = signature.bind_partial(*args, **kwargs)
        bound.arguments[name] = prompt
        return bound.args, bound.kwargs

    return with_prompt


class _Redactor:
    """Redacts the prompt argument when the verdict says so; restores the answer."""

    def __init__(self, ctx: Context, fn: Callable[..., Any]) -> None:
        self.ctx = ctx
        self.with_prompt = _prompt_setter(fn)

    def args(
        self, verdict: Verdict, prompt: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any], Vault | None]:
        if not verdict.redacted:
            return args, kwargs, None
        redaction = self.ctx.guard.redact(prompt, role=Role.PROMPT)
        args, kwargs = self.with_prompt(args, kwargs, redaction.text)
        return args, kwargs, redaction.vault


def _side(text: str, label: str) -> Extracted:
    return Extracted(pieces=[Piece(text, label)] if text else [], prompt=text)


def _result(fn: Callable[..., Any], out: Any) -> str:
    if not isinstance(out, str):
        raise TypeError(f"{fn.__name__} must return a str, not {type(out).__name__}")
    return out


class _Restore:
    """Restores placeholders in a generator's released pieces (no-op without a vault)."""

    def __init__(self, vault: Vault | None) -> None:
        self.restorer = vault.restorer() if vault else None

    def feed(self, text: str, *, end: bool = False) -> str:
        if self.restorer is None:
            return text
        out = self.restorer.feed(text)
        return out + self.restorer.flush() if end else out


def _stream_end(ctx: Context, step: StreamStep, stage: str) -> Iterator[str]:
    """What a generator yields as it ends after a block (or raises, in raise mode)."""
    if step.verdict is not None and not ctx.refuse:
        raise ContentBlocked(step.verdict, stage=stage)
    yield ctx.refusal_message


def protect_function(ctx: Context, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Guard ``fn``; the kind of wrapper follows the kind of function.

    When the prompt's verdict is ``redact``, ``fn`` gets the prompt with placeholders and its
    answer (or each piece it yields) comes back with the values restored.
    """
    prompt_of = _prompt_getter(fn)
    if inspect.isasyncgenfunction(fn):
        return _async_gen(ctx, fn, prompt_of)
    if inspect.isgeneratorfunction(fn):
        return _sync_gen(ctx, fn, prompt_of)
    if inspect.iscoroutinefunction(fn):
        return _async(ctx, fn, prompt_of)
    return _sync(ctx, fn, prompt_of)


def _sync(ctx: Context, fn: Callable[..., Any], prompt_of: Any) -> Callable[..., Any]:
    redactor = _Redactor(ctx, fn)

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> str:
        prompt = prompt_of(args, kwargs)
        report = GuardReport()
        verdict = ctx.check_prompt(_side(prompt, "prompt"), report)
        if verdict.blocked:
            return ctx.refusal_message
        args, kwargs, vault = redactor.args(verdict, prompt, args, kwargs)
        out = _result(fn, fn(*args, **kwargs))
        verdicts = ctx.check_choices([_side(out, "return value")], prompt, report)
        if verdicts[0].blocked:
            return ctx.refusal_message
        return vault.restore(out) if vault else out

    return call


def _async(ctx: Context, fn: Callable[..., Any], prompt_of: Any) -> Callable[..., Any]:
    redactor = _Redactor(ctx, fn)

    @functools.wraps(fn)
    async def call(*args: Any, **kwargs: Any) -> str:
        prompt = prompt_of(args, kwargs)
        report = GuardReport()
        verdict = await ctx.acheck_prompt(_side(prompt, "prompt"), report)
        if verdict.blocked:
            return ctx.refusal_message
        args, kwargs, vault = redactor.args(verdict, prompt, args, kwargs)
        out = _result(fn, await fn(*args, **kwargs))
        verdicts = await ctx.acheck_choices([_side(out, "return value")], prompt, report)
        if verdicts[0].blocked:
            return ctx.refusal_message
        return vault.restore(out) if vault else out

    return call


def _sync_gen(ctx: Context, fn: Callable[..., Any], prompt_of: Any) -> Callable[..., Any]:
    redactor = _Redactor(ctx, fn)

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Iterator[str]:
        prompt = prompt_of(args, kwargs)
        verdict = ctx.check_prompt(_side(prompt, "prompt"), GuardReport())
        if verdict.blocked:
            yield ctx.refusal_message
            return
        args, kwargs, vault = redactor.args(verdict, prompt, args, kwargs)
        restore = _Restore(vault)
        moderator = ctx.moderator(prompt)
        upstream = fn(*args, **kwargs)
        try:
            for piece in upstream:
                step = moderator.feed(_result(fn, piece))
                if released := restore.feed(step.released):
                    yield released
                if step.blocked:
                    yield from _stream_end(ctx, step, "stream_chunk")
                    return
            step = moderator.finish()
            if released := restore.feed(step.released, end=not step.blocked):
                yield released
            if step.blocked:
                yield from _stream_end(ctx, step, "post_call")
        finally:
            upstream.close()

    return call


def _async_gen(ctx: Context, fn: Callable[..., Any], prompt_of: Any) -> Callable[..., Any]:
    redactor = _Redactor(ctx, fn)

    @functools.wraps(fn)
    async def call(*args: Any, **kwargs: Any) -> AsyncIterator[str]:
        prompt = prompt_of(args, kwargs)
        verdict = await ctx.acheck_prompt(_side(prompt, "prompt"), GuardReport())
        if verdict.blocked:
            yield ctx.refusal_message
            return
        args, kwargs, vault = redactor.args(verdict, prompt, args, kwargs)
        restore = _Restore(vault)
        moderator = ctx.moderator(prompt)
        upstream = fn(*args, **kwargs)
        try:
            async for piece in upstream:
                step = await moderator.afeed(_result(fn, piece))
                if released := restore.feed(step.released):
                    yield released
                if step.blocked:
                    for end in _stream_end(ctx, step, "stream_chunk"):
                        yield end
                    return
            step = await moderator.afinish()
            if released := restore.feed(step.released, end=not step.blocked):
                yield released
            if step.blocked:
                for end in _stream_end(ctx, step, "post_call"):
                    yield end
        finally:
            await upstream.aclose()

    return call
