"""Streamed ``/v1/messages``: Anthropic's event stream, moderated as it flows.

The events (``message_start``, ``content_block_start`` / ``_delta`` / ``_stop``,
``message_delta``, ``message_stop``, ``ping``, ``error``) are relayed in order, except:

- a text block's ``text_delta`` text goes through a ``StreamModerator``: it is held back and
  sent only once a check over the block so far has passed (its other deltas, e.g. citations,
  follow its text at the block's end);
- every other block (``tool_use``, ``thinking``, server tools, ...) is held whole, from its
  ``content_block_start`` to its ``content_block_stop``, then checked once and sent.

A block ends the message: the blocked part is never sent. The open text block gets the policy's
refusal as its last delta (a held block is replaced by a text block with the refusal), then a
``message_delta`` with ``stop_reason: "refusal"``, ``stop_details`` saying why and the verdict
under ``guardrail``, then ``message_stop``. If the upstream stream breaks off, the open text
block is checked and released if it passes, and an ``error`` event ends the stream (the
``anthropic`` client raises).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi.responses import Response, StreamingResponse

from guardrail.streaming import StreamModerator, StreamStep
from guardrail.types import Action, Role, Verdict

from ._messages_text import anthropic_error_body, block_text, refusal_details
from .errors import ProxyHTTPError
from .forwarding import upstream_error
from .service import ProxyService, RequestContext, guardrail_field
from .sse import encode, read_events
from .upstream import UpstreamReply, reply_headers

__all__ = ["MessagesRelay", "stream_messages"]


async def stream_messages(
    service: ProxyService,
    ctx: RequestContext,
    headers: dict[str, str],
    body: bytes,
    context: str | None,
) -> Response:
    """Open the upstream stream and relay it, moderated; upstream errors come back as is.

    Raises:
        ProxyHTTPError: 502 / 504 when the upstream cannot be reached or times out.
    """
    upstream, ctx.upstream_s = await service.anthropic.open_stream(
        "/messages", route=ctx.route, headers=headers, content=body
    )
    content_type = upstream.headers.get("content-type", "")
    if upstream.is_success and content_type.startswith("text/event-stream"):
        relay = MessagesRelay(service, ctx, context)
        out_headers = {**reply_headers(upstream.headers), **service.headers(ctx)}
        return StreamingResponse(
            relay.run(upstream), media_type="text/event-stream", headers=out_headers
        )
    try:
        content = await upstream.aread()
    except httpx.TransportError as e:
        raise service.anthropic.failure(ctx.route, e) from e
    finally:
        await upstream.aclose()
    if upstream.is_success:
        raise ProxyHTTPError(
            502,
            f"The upstream API answered a streaming request with {content_type or 'no type'}, "
            "not an event stream.",
            code="upstream_invalid",
        )
    reply = UpstreamReply(
        upstream.status_code, reply_headers(upstream.headers), content, content_type, 0.0
    )
    return upstream_error(service, ctx, reply)


@dataclass(slots=True)
class _Block:
    """One content block of the message being relayed."""

    index: int
    moderator: StreamModerator | None  # text blocks; None for blocks held whole
    started: bool = False  # its content_block_start was sent
    released_any: bool = False
    recorded: int = 0
    held: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (event, payload)
    texts: list[str] = field(default_factory=list)  # a held block's text, for its check


class MessagesRelay:
    """Rewrites one upstream Messages event stream: moderated text, held blocks, refusals."""

    def __init__(self, service: ProxyService, ctx: RequestContext, context: str | None) -> None:
        self.service = service
        self.ctx = ctx
        self.context = context
        self.refusal = ctx.guard.policy.refusal_message
        self.blocks: dict[int, _Block] = {}
        self.verdicts: list[Verdict] = []
        self.output_tokens = 0
        self.stopped = False

    async def run(self, upstream: httpx.Response) -> AsyncIterator[bytes]:
        """The caller's SSE bytes. Closes the upstream response however it ends."""
        try:
            async for event in read_events(upstream.aiter_lines()):
                out, stop = await self._event(event.name, event.data)
                for data in out:
                    yield data
                if stop:
                    return
            # The upstream closed without message_stop: the answer is incomplete.
            for data in await self._finish_open():
                yield data
            if not self.stopped:
                yield _error("The upstream stream ended before message_stop; incomplete.")
        except httpx.TransportError as e:
            kind = "timeout" if isinstance(e, httpx.TimeoutException) else "stream_cut"
            self.service.metrics.upstream_errors.labels(self.ctx.route, kind).inc()
            for data in await self._finish_open():
                yield data
            if not self.stopped:
                yield _error("The upstream stream ended unexpectedly; the answer is incomplete.")
        finally:
            await upstream.aclose()

    async def _event(self, name: str | None, data: str) -> tuple[list[bytes], bool]:
        """Outgoing events for one upstream event, and whether to stop reading."""
        try:
            payload = json.loads(data)
        except ValueError:
            return [], False  # not JSON: nothing a client could use, and nothing to moderate
        if not isinstance(payload, dict):
            return [], False
        kind = str(payload.get("type") or name or "")
        name = name or kind
        if kind == "message_start":
            return await self._message_start(name, payload)
        if kind in ("content_block_start", "content_block_delta", "content_block_stop"):
            index = payload.get("index")
            if not isinstance(index, int):
                return [], False  # a block event without an index cannot be placed
            if kind == "content_block_start":
                return await self._start(name, index, payload)
            if kind == "content_block_delta":
                return await self._delta(name, index, payload)
            return await self._stop(name, index, payload)
        if kind == "message_delta":
            usage = payload.get("usage")
            if isinstance(usage, dict) and isinstance(usage.get("output_tokens"), int):
                self.output_tokens = usage["output_tokens"]
            flagged = [v for v in self.verdicts if v.action is not Action.ALLOW]
            if flagged:
                payload = {**payload, "guardrail": guardrail_field(flagged, "stream")}
            return [encode(payload, name)], False
        if kind in ("message_stop", "error"):
            self.stopped = True
            return [encode(payload, name)], True
        return [encode(payload, name)], False  # ping and events without model text

    async def _message_start(self, name: str, payload: dict[str, Any]) -> tuple[list[bytes], bool]:
        message = payload.get("message")
        if isinstance(message, dict):
            usage = message.get("usage")
            if isinstance(usage, dict) and isinstance(usage.get("output_tokens"), int):
                self.output_tokens = usage["output_tokens"]
            # The real API starts with no content; anything there is checked before it goes.
            text = "\n".join(block_text(message.get("content") or []))
            if text:
                checked = await self._check(text)
                if checked:
                    return self._refuse(0, checked, start=payload), True
        return [encode(payload, name)], False

    async def _start(
        self, name: str, index: int, payload: dict[str, Any]
    ) -> tuple[list[bytes], bool]:
        block = payload.get("content_block")
        block = block if isinstance(block, dict) else {}
        if block.get("type") != "text":
            held = _Block(index, None, held=[(name, payload)], texts=block_text(block))
            self.blocks[index] = held
            return [], False
        moderator = StreamModerator(
            self.ctx.guard,
            prompt=self.context,
            check_every=self.service.settings.stream_check_every,
        )
        state = _Block(index, moderator, started=True)
        self.blocks[index] = state
        first = block.get("text") if isinstance(block.get("text"), str) else ""
        start = {**payload, "content_block": {**block, "text": ""}}
        out = [encode(start, name)]
        if first:
            more, stop = await self._text(state, first)
            return out + more, stop
        return out, False

    async def _delta(
        self, name: str, index: int, payload: dict[str, Any]
    ) -> tuple[list[bytes], bool]:
        state = self.blocks.get(index)
        if state is None:
            return [], False  # a delta for a block that never started: nothing to attach it to
        delta = payload.get("delta")
        delta = delta if isinstance(delta, dict) else {}
        if state.moderator is not None and delta.get("type") == "text_delta":
            text = delta.get("text")
            return await self._text(state, text if isinstance(text, str) else "")
        state.held.append((name, payload))
        for key in ("partial_json", "thinking", "text", "citation"):
            value = delta.get(key)
            state.texts += block_text(value) if isinstance(value, (dict, list)) else []
            if isinstance(value, str):
                state.texts.append(value)
        return [], False

    async def _text(self, state: _Block, text: str) -> tuple[list[bytes], bool]:
        assert state.moderator is not None
        started = time.perf_counter()
        step = await state.moderator.afeed(text)
        self._record(state, "stream_chunk", time.perf_counter() - started)
        if step.blocked:
            return self._refuse(state.index, self._blocking(state)), True
        return self._released(state, step), False

    async def _stop(
        self, name: str, index: int, payload: dict[str, Any]
    ) -> tuple[list[bytes], bool]:
        state = self.blocks.get(index)
        if state is None:
            return [encode(payload, name)], False
        if state.moderator is not None:
            started = time.perf_counter()
            step = await state.moderator.afinish()
            self._record(state, "post_call", time.perf_counter() - started)
            if step.blocked:
                return self._refuse(index, self._blocking(state)), True
            out = self._released(state, step)
            out += [encode(p, n) for n, p in state.held]
            return [*out, encode(payload, name)], False
        text = "\n".join(t for t in state.texts if t)
        if text:
            checked = await self._check(text)
            if checked:
                return self._refuse(index, checked), True
        return [*(encode(p, n) for n, p in state.held), encode(payload, name)], False

    async def _check(self, text: str) -> list[Verdict]:
        """Check a held text; the verdicts when it is blocked, else ``[]``."""
        checked = await self.service.check(
            self.ctx, [text], Role.RESPONSE, stage="post_call", prompts=[self.context]
        )
        self.verdicts += checked.verdicts
        return checked.verdicts if checked.blocked else []

    def _record(self, state: _Block, stage: str, seconds: float) -> None:
        moderator = state.moderator
        assert moderator is not None
        new = moderator.verdicts[state.recorded :]
        if not new:
            return
        state.recorded = len(moderator.verdicts)
        self.verdicts += new
        checked = moderator.text if moderator.blocked else moderator.released_text
        self.service.record(self.ctx, new, [checked] * len(new), stage=stage, seconds=seconds)

    def _blocking(self, state: _Block) -> list[Verdict]:
        assert state.moderator is not None
        return [v for v in state.moderator.verdicts if v.blocked]

    def _released(self, state: _Block, step: StreamStep) -> list[bytes]:
        if not step.released:
            return []
        state.released_any = True
        return [_text_delta(state.index, step.released)]

    def _refuse(
        self, index: int, verdicts: list[Verdict], *, start: dict[str, Any] | None = None
    ) -> list[bytes]:
        """The end of a blocked message: the refusal in a text block, why, message_stop."""
        self.stopped = True
        state = self.blocks.get(index)
        out: list[bytes] = []
        if start is not None:
            message = {**start.get("message", {}), "content": []}
            out.append(encode({**start, "message": message}, "message_start"))
        if state is not None and state.started:
            sep = "\n\n" if state.released_any else ""
            out.append(_text_delta(index, sep + self.refusal))
        else:
            block = {"type": "text", "text": ""}
            out.append(
                encode(
                    {"type": "content_block_start", "index": index, "content_block": block},
                    "content_block_start",
                )
            )
            out.append(_text_delta(index, self.refusal))
        out.append(encode({"type": "content_block_stop", "index": index}, "content_block_stop"))
        delta = {
            "type": "message_delta",
            "delta": {
                "stop_reason": "refusal",
                "stop_sequence": None,
                "stop_details": refusal_details(verdicts),
            },
            "usage": {"output_tokens": self.output_tokens},
            "guardrail": guardrail_field(verdicts, "stream"),
        }
        out.append(encode(delta, "message_delta"))
        out.append(encode({"type": "message_stop"}, "message_stop"))
        return out

    async def _finish_open(self) -> list[bytes]:
        """When the upstream breaks off: check and release the open text block, or refuse."""
        if self.stopped:
            return []
        out: list[bytes] = []
        for state in self.blocks.values():
            moderator = state.moderator
            if moderator is None or moderator.blocked or moderator.held == 0:
                continue
            started = time.perf_counter()
            step = await moderator.afinish()
            self._record(state, "post_call", time.perf_counter() - started)
            if step.blocked:
                return out + self._refuse(state.index, self._blocking(state))
            out += self._released(state, step)
        return out


def _text_delta(index: int, text: str) -> bytes:
    delta = {"type": "text_delta", "text": text}
    return encode(
        {"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta"
    )


def _error(message: str) -> bytes:
    return encode(anthropic_error_body(message, status=502, code="upstream_stream_cut"), "error")
