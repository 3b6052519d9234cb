"""Moderated Responses API streams (``responses.create(stream=True)``).

Every ``*.delta`` event that carries text (output text, tool-call arguments, reasoning
summaries, audio transcripts) goes through a ``StreamModerator`` keyed by its part; its text is
re-emitted in events of the same type only after a passing check, and the matching ``*.done``
event (which repeats the whole text) only after the final check. A block ends the stream at
once with a ``response.incomplete`` event whose ``incomplete_details.reason`` is
``content_filter``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from guardrail.middleware._context import Context
from guardrail.middleware._objects import GuardReport, replace, response_incomplete_event
from guardrail.middleware._texts import get
from guardrail.streaming import StreamModerator, StreamStep

__all__ = ["async_events", "sync_events"]

_Key = tuple[Any, ...]


class _State:
    def __init__(self, ctx: Context, prompt: str | None, report: GuardReport, model: str):
        self.ctx, self.prompt, self.report, self.model = ctx, prompt, report, model
        self.mods: dict[_Key, StreamModerator] = {}
        self.last_delta: dict[_Key, Any] = {}
        self.response: Any = None
        self.sequence = 0
        self.blocked = False
        self.finished: set[_Key] = set()

    def key(self, event: Any) -> _Key:
        base = str(get(event, "type")).rsplit(".", 1)[0]
        fields = ("item_id", "output_index", "content_index", "summary_index")
        return (base, *(get(event, f) for f in fields))

    def classify(self, event: Any) -> tuple[str, _Key | None]:
        """``delta`` (moderate it), ``done`` (finish a moderated part) or ``pass``."""
        kind = str(get(event, "type") or "")
        sequence = get(event, "sequence_number")
        if isinstance(sequence, int):
            self.sequence = sequence
        if get(event, "response") is not None:
            self.response = get(event, "response")
        if kind.endswith(".delta") and isinstance(get(event, "delta"), str):
            key = self.key(event)
            self.last_delta[key] = event
            if key not in self.mods:
                self.mods[key] = self.ctx.moderator(self.prompt)
            return "delta", key
        if kind.endswith(".done"):
            key = self.key(event)
            if key in self.mods:
                self.finished.add(key)
                return "done", key
        return "pass", None

    def unfinished(self) -> list[_Key]:
        """Parts whose ``*.done`` never came: finished (checked) at the end of the stream."""
        keys = [k for k in self.mods if k not in self.finished]
        self.finished.update(keys)
        return keys

    def emit(self, key: _Key, step: StreamStep, done: Any) -> list[Any]:
        if step.verdict is not None:
            self.report.record(0, step.verdict)
        if step.blocked:
            self.blocked = True
            return [response_incomplete_event(self.model, self.response, self.sequence + 1)]
        out = []
        if step.released:
            template = self.last_delta[key]
            changes: dict[str, Any] = {"delta": step.released}
            if get(template, "logprobs") is not None:
                changes["logprobs"] = []  # per-token data would reveal held-back tokens
            out.append(replace(template, **changes))
        if done is not None:
            out.append(done)
        return out


def sync_events(
    ctx: Context, upstream: Any, prompt: str | None, report: GuardReport, model: str
) -> Iterator[Any]:
    """The moderated events of a sync Responses stream."""
    state = _State(ctx, prompt, report, model)
    for event in upstream:
        action, key = state.classify(event)
        if key is None:
            yield event
            continue
        mod = state.mods[key]
        if action == "delta":
            out = state.emit(key, mod.feed(get(event, "delta")), None)
        else:
            out = state.emit(key, mod.finish(), event)
        yield from out
        if state.blocked:
            close = getattr(upstream, "close", None)
            if callable(close):
                close()
            return
    for key in state.unfinished():
        yield from state.emit(key, state.mods[key].finish(), None)
        if state.blocked:
            return


async def async_events(
    ctx: Context, upstream: Any, prompt: str | None, report: GuardReport, model: str
) -> AsyncIterator[Any]:
    """The moderated events of an async Responses stream."""
    state = _State(ctx, prompt, report, model)
    async for event in upstream:
        action, key = state.classify(event)
        if key is None:
            yield event
            continue
        mod = state.mods[key]
        if action == "delta":
            out = state.emit(key, await mod.afeed(get(event, "delta")), None)
        else:
            out = state.emit(key, await mod.afinish(), event)
        for item in out:
            yield item
        if state.blocked:
            close = getattr(upstream, "close", None)
            if callable(close):
                await close()
            return
    for key in state.unfinished():
        for item in state.emit(key, await state.mods[key].afinish(), None):
            yield item
        if state.blocked:
            return
