"""Moderated streams for the client wrapper: chunks of the same types, text held back until a
check passes (``StreamModerator``), tool-call arguments held until they are complete and checked.

A block ends that choice at once with a chunk whose ``finish_reason`` is ``content_filter``;
with ``n == 1`` (or once every choice has ended) the upstream stream is closed. Per-token
``logprobs`` are dropped from moderated chunks, since they would reveal held-back tokens.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterator
from typing import Any

from guardrail.middleware._context import Context
from guardrail.middleware._objects import (
    GuardReport,
    attach,
    end_chat_choice,
    end_completion_choice,
    replace,
)
from guardrail.middleware._redact import restore_async, restore_sync
from guardrail.middleware._responses import async_events, sync_events
from guardrail.middleware._texts import get
from guardrail.redaction import Vault
from guardrail.streaming import StreamModerator, StreamStep
from guardrail.types import Verdict

__all__ = ["guard_stream", "refusal_stream"]

# Delta fields with model text other than content and tool calls: held until the choice ends.
_HELD_TEXT = ("refusal", "reasoning_content", "reasoning")


class _State:
    """Per-stream state: one moderator and one tool-call buffer per choice index."""

    def __init__(self, ctx: Context, kind: str, prompt: str | None, report: GuardReport, n: int):
        self.ctx, self.kind, self.prompt, self.report, self.n = ctx, kind, prompt, report, n
        self.mods: dict[int, StreamModerator] = {}
        self.held: dict[int, list[Any]] = {}  # chunk choices carrying tool-call deltas
        self.tools: dict[int, dict[int, list[str]]] = {}  # choice -> tool index -> text pieces
        self.templates: dict[int, tuple[Any, Any]] = {}  # choice -> (chunk, choice) last seen
        self.closed: set[int] = set()
        self.blocked = False

    @property
    def done(self) -> bool:
        """True when a block ended every choice: stop reading upstream."""
        return self.blocked and len(self.closed) >= self.n

    def moderator(self, index: int) -> StreamModerator:
        if index not in self.mods:
            self.mods[index] = self.ctx.moderator(self.prompt)
        return self.mods[index]

    def text_of(self, choice: Any) -> str | None:
        if self.kind == "chat":
            content = get(get(choice, "delta"), "content")
        else:
            content = get(choice, "text")
        return content if isinstance(content, str) else None

    def open_choices(self, chunk: Any) -> list[tuple[int, Any]]:
        """The chunk's choices that still flow; records templates and holds tool calls."""
        out = []
        for choice in get(chunk, "choices") or ():
            index = get(choice, "index") or 0
            if index in self.closed:
                continue  # nothing of a blocked (or finished) choice goes out again
            self.templates[index] = (chunk, choice)
            self._hold_tools(index, choice)
            out.append((index, choice))
        return out

    def _hold_tools(self, index: int, choice: Any) -> None:
        delta = get(choice, "delta")
        calls = list(get(delta, "tool_calls") or ())
        legacy = get(delta, "function_call")
        # Reasoning and refusals are held like tool calls: whole, checked when the choice ends.
        other = [text for name in _HELD_TEXT if isinstance(text := get(delta, name), str) and text]
        if not calls and legacy is None and not other:
            return
        self.held.setdefault(index, []).append(choice)
        parts = self.tools.setdefault(index, {})
        for k, text in enumerate(other):
            parts.setdefault(-2 - k, []).append(text)
        pairs = [(get(call, "index") or 0, get(call, "function") or call) for call in calls]
        if legacy is not None:
            pairs.append((-1, legacy))
        for key, fn in pairs:
            names = (get(fn, "name"), get(fn, "arguments"))
            parts.setdefault(key, []).extend(s for s in names if isinstance(s, str))

    def tool_text(self, index: int) -> str | None:
        parts = self.tools.get(index)
        if not parts:
            return None
        return "\n".join("".join(parts[k]) for k in sorted(parts))

    def tool_verdict(self, verdict: Verdict) -> Verdict:
        self.ctx.report(verdict, "post_call")
        return verdict

    # -- emitting --------------------------------------------------------------------------

    def emit(
        self,
        index: int,
        choice: Any,
        steps: list[StreamStep | None],
        tools: Verdict | None,
        finish: Any,
    ) -> list[Any]:
        chunk = self.templates[index][0]
        verdicts = [s.verdict for s in steps if s is not None and s.verdict is not None]
        if tools is not None:
            verdicts.append(tools)
        self._record(index, verdicts)
        blocked = any(s is not None and s.blocked for s in steps) or bool(tools and tools.blocked)
        if blocked:
            self.closed.add(index)
            self.blocked = True
            end = end_chat_choice if self.kind == "chat" else end_completion_choice
            return [replace(chunk, choices=[replace(end(choice), logprobs=None)])]
        released = "".join(s.released for s in steps if s is not None)
        out = []
        role = get(get(choice, "delta"), "role") if self.kind == "chat" else None
        if released or role is not None:
            out.append(self._with_text(chunk, choice, released, None))
        if finish is not None:
            self.closed.add(index)
            out += [replace(chunk, choices=[self._bare(c)]) for c in self.held.pop(index, [])]
            out.append(self._with_text(chunk, choice, None, finish))
        return out

    def _record(self, index: int, verdicts: list[Verdict]) -> None:
        for verdict in verdicts:
            self.report.record(index, verdict)

    def _with_text(self, chunk: Any, choice: Any, text: str | None, finish: Any) -> Any:
        if self.kind == "chat":
            old = get(choice, "delta")
            held = {name: None for name in _HELD_TEXT if get(old, name) is not None}
            delta = replace(old, content=text, tool_calls=None, function_call=None, **held)
            if text is None:
                delta = replace(delta, role=None)
            new = replace(choice, delta=delta, finish_reason=finish, logprobs=None)
        else:
            new = replace(choice, text=text or "", finish_reason=finish, logprobs=None)
        return replace(chunk, choices=[new])

    def _bare(self, choice: Any) -> Any:
        delta = replace(get(choice, "delta"), content=None, role=None)
        return replace(choice, delta=delta, finish_reason=None, logprobs=None)

    def unfinished(self) -> list[tuple[int, Any]]:
        """Choices the upstream never finished (it ended early): checked and flushed."""
        return [(i, t[1]) for i, t in sorted(self.templates.items()) if i not in self.closed]


# -- drivers -------------------------------------------------------------------------------


def _sync_chunks(state: _State, upstream: Any) -> Iterator[Any]:
    for chunk in upstream:
        if not get(chunk, "choices"):
            yield chunk  # usage-only chunks carry no text
            continue
        for index, choice in state.open_choices(chunk):
            mod, text = state.moderator(index), state.text_of(choice)
            step = mod.feed(text) if text else None
            finish = get(choice, "finish_reason")
            final, tools = None, None
            if finish is not None and not mod.blocked:
                final, tools = _finish(state, index)
            yield from state.emit(index, choice, [step, final], tools, finish)
        if state.done:
            _close(upstream)
            return
    for index, choice in state.unfinished():
        final, tools = _finish(state, index)
        yield from state.emit(index, choice, [final], tools, None)


def _finish(state: _State, index: int) -> tuple[StreamStep, Verdict | None]:
    """Finish a choice's text, then check its held tool calls unless the text blocked."""
    final = state.moderator(index).finish()
    tool_text = state.tool_text(index)
    if tool_text is None or final.blocked:
        return final, None
    return final, state.tool_verdict(state.ctx.guard.check_response(tool_text, state.prompt))


async def _afinish(state: _State, index: int) -> tuple[StreamStep, Verdict | None]:
    """``_finish`` for async streams."""
    final = await state.moderator(index).afinish()
    tool_text = state.tool_text(index)
    if tool_text is None or final.blocked:
        return final, None
    verdict = await state.ctx.guard.acheck_response(tool_text, state.prompt)
    return final, state.tool_verdict(verdict)


async def _async_chunks(state: _State, upstream: Any) -> AsyncIterator[Any]:
    async for chunk in upstream:
        if not get(chunk, "choices"):
            yield chunk
            continue
        for index, choice in state.open_choices(chunk):
            mod, text = state.moderator(index), state.text_of(choice)
            step = await mod.afeed(text) if text else None
            finish = get(choice, "finish_reason")
            final, tools = None, None
            if finish is not None and not mod.blocked:
                final, tools = await _afinish(state, index)
            for out in state.emit(index, choice, [step, final], tools, finish):
                yield out
        if state.done:
            await _aclose(upstream)
            return
    for index, choice in state.unfinished():
        final, tools = await _afinish(state, index)
        for out in state.emit(index, choice, [final], tools, None):
            yield out


def _close(upstream: Any) -> None:
    close = getattr(upstream, "close", None)
    if callable(close):
        close()


async def _aclose(upstream: Any) -> None:
    close = getattr(upstream, "close", None)
    if callable(close):
        result = close()
        if hasattr(result, "__await__"):
            await result


# -- stream objects ------------------------------------------------------------------------


@functools.cache
def _openai_streams() -> tuple[type[Any], type[Any], type[Any], type[Any]] | None:
    """Subclasses of openai's Stream / AsyncStream, so moderated streams keep their type."""
    try:
        from openai import AsyncStream, Stream
    except ImportError:
        return None

    class GuardedStream(Stream[Any]):
        """An ``openai.Stream`` whose chunks come from the guard."""

        def close(self) -> None:
            if self.response is not None:
                self.response.close()

    class AsyncGuardedStream(AsyncStream[Any]):
        """An ``openai.AsyncStream`` whose chunks come from the guard."""

        async def close(self) -> None:
            if self.response is not None:
                await self.response.aclose()

    for cls in (GuardedStream, AsyncGuardedStream):
        cls.__qualname__ = cls.__name__
    return Stream, AsyncStream, GuardedStream, AsyncGuardedStream


class IteratorStream:
    """A moderated stream over a non-openai client's iterable (same iteration protocol)."""

    def __init__(self, chunks: Iterator[Any], upstream: Any = None) -> None:
        self._chunks = chunks
        self._upstream = upstream

    def __iter__(self) -> Iterator[Any]:
        return self._chunks

    def __next__(self) -> Any:
        return next(self._chunks)

    def __enter__(self) -> IteratorStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the upstream stream, if it can be closed."""
        _close(self._upstream)


class AsyncIteratorStream:
    """A moderated stream over a non-openai client's async iterable."""

    def __init__(self, chunks: AsyncIterator[Any], upstream: Any = None) -> None:
        self._chunks = chunks
        self._upstream = upstream

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._chunks

    async def __anext__(self) -> Any:
        return await self._chunks.__anext__()

    async def __aenter__(self) -> AsyncIteratorStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the upstream stream, if it can be closed."""
        await _aclose(self._upstream)


def _package(chunks: Any, upstream: Any, report: GuardReport, is_async: bool) -> Any:
    classes = _openai_streams()
    stream: Any
    if classes is not None and (upstream is None or isinstance(upstream, classes[:2])):
        stream = object.__new__(classes[3] if is_async else classes[2])
        if upstream is not None:
            stream.__dict__.update(upstream.__dict__)
        else:
            stream.response = None
        stream._iterator = chunks
    elif is_async:
        stream = AsyncIteratorStream(chunks, upstream)
    else:
        stream = IteratorStream(chunks, upstream)
    return attach(stream, report)


def guard_stream(
    ctx: Context,
    kind: str,
    upstream: Any,
    prompt: str | None,
    report: GuardReport,
    n: int,
    model: str = "unknown",
    *,
    vault: Vault | None = None,
) -> Any:
    """The moderated version of an upstream stream (sync or async, by what ``upstream`` is).

    With a non-empty ``vault`` (the prompt was redacted), placeholders in what is released are
    restored, each held until it is whole.
    """
    is_async = hasattr(upstream, "__aiter__")
    chunks: Any
    if kind == "responses":
        events = async_events if is_async else sync_events
        chunks = events(ctx, upstream, prompt, report, model)
    else:
        state = _State(ctx, kind, prompt, report, n)
        chunks = _async_chunks(state, upstream) if is_async else _sync_chunks(state, upstream)
    if vault:
        chunks = (restore_async if is_async else restore_sync)(chunks, vault, kind)
    return _package(chunks, upstream, report, is_async=is_async)


def refusal_stream(chunks: list[Any], report: GuardReport, is_async: bool) -> Any:
    """A stream that yields a prepared refusal (the prompt was blocked; no upstream call)."""
    if not is_async:
        return _package(iter(chunks), None, report, is_async=False)

    async def agen() -> AsyncIterator[Any]:
        for chunk in chunks:
            yield chunk

    return _package(agen(), None, report, is_async=True)
