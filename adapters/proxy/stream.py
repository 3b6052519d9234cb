"""Streaming (SSE) chat and text completions, moderated as they flow.

Generated text goes through ``guardrail.streaming.StreamModerator`` (one per choice): it is held
back and released only once a check over the text so far has passed. Tool calls, function calls
and refusals are held whole until their choice finishes, then checked once. A block ends the
choice with the policy's refusal and ``finish_reason: "content_filter"``; since headers are long
gone by then, a flag or block found in the response is reported in the finishing chunk's
``guardrail`` field (and, as always, in the audit log and metrics).

If the upstream stream breaks off, or closes without its ``[DONE]`` terminator, the text still
held is checked and released if it passes, then an OpenAI-style ``error`` event ends the stream
(no ``[DONE]``), so clients raise.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi.responses import Response, StreamingResponse

from guardrail.redaction import restore_payload
from guardrail.streaming import StreamModerator, StreamStep
from guardrail.types import Action, Role, Verdict

from ._choice import ChoiceState
from .errors import ProxyHTTPError, error_body
from .fields import moderated_texts
from .forwarding import Prepared, upstream_error
from .service import Checked, ProxyService, RequestContext, guardrail_field
from .sse import DONE, encode, read_events
from .upstream import UpstreamReply, reply_headers

__all__ = ["StreamRelay", "stream_response"]

_TEMPLATE = ("id", "object", "created", "model", "system_fingerprint", "service_tier")


async def stream_response(service: ProxyService, prepared: Prepared, path: str) -> Response:
    """Open the upstream stream and relay it, moderated; upstream errors come back as is.

    Raises:
        ProxyHTTPError: 502 / 504 when the upstream cannot be reached or times out.
    """
    ctx = prepared.ctx
    upstream, ctx.upstream_s = await service.upstream.open_stream(
        path, route=ctx.route, headers=prepared.headers, content=prepared.body
    )
    content_type = upstream.headers.get("content-type", "")
    if upstream.is_success and content_type.startswith("text/event-stream"):
        relay = StreamRelay(service, prepared)
        headers = {**reply_headers(upstream.headers), **service.headers(ctx)}
        return StreamingResponse(
            relay.run(upstream), media_type="text/event-stream", headers=headers
        )
    try:
        content = await upstream.aread()
    except httpx.TransportError as e:
        raise service.upstream.failure(ctx.route, e) from e
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


class StreamRelay:
    """Rewrites one upstream SSE stream: moderated text, held tool calls, a final verdict."""

    def __init__(self, service: ProxyService, prepared: Prepared) -> None:
        self.service = service
        self.ctx: RequestContext = prepared.ctx
        self.chat = prepared.chat
        self.context = prepared.context
        self.vault = prepared.vault
        self.refusal = self.ctx.guard.policy.refusal_message
        self.choices: dict[int, ChoiceState] = {}
        # id, created, model, ... of the last upstream chunk, for the chunks the proxy adds.
        self.template: dict[str, Any] = {"object": self._object()}

    async def run(self, upstream: httpx.Response) -> AsyncIterator[bytes]:
        """The caller's SSE bytes. Closes the upstream response however it ends."""
        try:
            ended = False  # [DONE], an upstream error event, or every choice blocked
            async for event in read_events(upstream.aiter_lines()):
                if event.data.strip() == "[DONE]":
                    ended = True
                    break
                out, stop = await self._event(event.name, event.data)
                for data in out:
                    yield data
                if stop:
                    ended = True
                    break
            # Finish what is held (checked, released if it passes), then end.
            for data in await self._finish_all():
                yield data
            if ended:
                yield DONE
            else:
                # The upstream closed without its terminator (a close-delimited body that died
                # mid-stream reads as a clean close): the answer may be cut short, so say so.
                self.service.metrics.upstream_errors.labels(self.ctx.route, "stream_cut").inc()
                message = (
                    "The upstream stream ended without its [DONE] terminator; the answer may "
                    "be incomplete."
                )
                yield encode(
                    error_body(message, type_="upstream_error", code="upstream_stream_cut")
                )
        except httpx.TransportError as e:
            kind = "timeout" if isinstance(e, httpx.TimeoutException) else "stream_cut"
            self.service.metrics.upstream_errors.labels(self.ctx.route, kind).inc()
            for data in await self._finish_all():
                yield data
            message = "The upstream stream ended unexpectedly; the answer is incomplete."
            yield encode(error_body(message, type_="upstream_error", code="upstream_" + kind))
        finally:
            await upstream.aclose()

    async def _event(self, name: str | None, data: str) -> tuple[list[bytes], bool]:
        """Outgoing events for one upstream event, and whether to stop reading."""
        try:
            chunk = json.loads(data)
        except ValueError:
            return [], False  # not JSON: nothing a client could use, and nothing to moderate
        if not isinstance(chunk, dict):
            return [], False
        if "error" in chunk:
            # An upstream error event (its message is the upstream's, not model text).
            return [encode(chunk, name)], True
        # Strings outside the choices (none in OpenAI's shape; a chunk without choices is
        # usage or something unknown) are checked before the chunk goes out.
        outside = {k: v for k, v in chunk.items() if k != "choices"}
        checked = await self._outside_check(outside)
        if checked is not None and checked.blocked:
            return self._block_all(checked), True
        if not isinstance(chunk.get("choices"), list):
            return [encode(chunk, name)], False
        self.template = {k: v for k, v in chunk.items() if k in _TEMPLATE}
        out_choices: list[dict[str, Any]] = []
        finished: list[ChoiceState] = []
        for raw in chunk["choices"]:
            if isinstance(raw, dict):
                new = await self._choice(raw)
                if new is not None:
                    out_choices.append(new)
                    if new.get("finish_reason") is not None:
                        finished.append(self._state(raw))
        stop = bool(self.choices) and all(s.blocked for s in self.choices.values())
        if not out_choices:
            # Everything held back; a usage-only chunk (``choices: []``) still goes out.
            keep = not chunk["choices"] or chunk.get("usage")
            return ([encode({**chunk, "choices": []}, name)] if keep else []), stop
        out = {**chunk, "choices": out_choices}
        flagged = [v for s in finished for v in s.verdicts if v.action is not Action.ALLOW]
        if flagged:
            out["guardrail"] = guardrail_field(flagged, "stream")
        return [encode(out, name)], stop

    async def _outside_check(self, outside: dict[str, Any]) -> Checked | None:
        """Check the moderated strings outside the choices (None when there are none)."""
        texts = moderated_texts(self._shape(), outside)
        if not texts:
            return None
        return await self.service.check(
            self.ctx,
            ["\n".join(texts)],
            Role.RESPONSE,
            stage="stream_chunk",
            prompts=[self.context],
        )

    def _block_all(self, checked: Checked) -> list[bytes]:
        """A blocked text outside the choices: the chunk that carried it is dropped and every
        open choice ends with the refusal; the last chunk sent carries the verdict."""
        out: list[dict[str, Any]] = []
        for state in self.choices.values():
            if not (state.blocked or state.finished):
                choice = self._blocked({"index": state.index}, state, "")
                out.append({**self.template, "choices": [choice]})
        if not out:
            out.append({**self.template, "choices": []})
        out[-1]["guardrail"] = guardrail_field(checked.verdicts, "stream")
        return [encode(chunk) for chunk in out]

    def _shape(self) -> str:
        return "chat.chunk" if self.chat else "completions.chunk"

    def _state(self, raw: dict[str, Any]) -> ChoiceState:
        index = raw.get("index", 0)
        key = index if isinstance(index, int) else 0
        if key not in self.choices:
            moderator = StreamModerator(
                self.ctx.guard,
                prompt=self.context,
                check_every=self.service.settings.stream_check_every,
            )
            restorer = self.vault.restorer() if self.vault else None
            self.choices[key] = ChoiceState(key, moderator, restorer=restorer)
        return self.choices[key]

    async def _choice(self, raw: dict[str, Any]) -> dict[str, Any] | None:
        """One outgoing choice for one incoming choice (None when there is nothing to send)."""
        state = self._state(raw)
        if state.blocked or state.finished:
            return None
        delta = raw.get("delta") if self.chat else raw
        delta = delta if isinstance(delta, dict) else {}
        text = delta.get("content" if self.chat else "text")
        released = ""
        if isinstance(text, str) and text:
            state.add_logprobs(raw.get("logprobs"), len(state.moderator.text) + len(text))
            step = await self._feed(state, text)
            if step.blocked:
                return self._blocked(raw, state, released)
            released = step.released
        # Fields other than the streamed text: held when they carry moderated strings.
        text_key = "content" if self.chat else "text"
        if self.chat:
            state.passing = state.hold(delta, "choices[].delta", ("content",))
        choice_skip = ("index", "delta", "logprobs", "finish_reason", text_key)
        state.passing_choice = state.hold(raw, "choices[]", choice_skip)
        finish = raw.get("finish_reason")
        if finish is not None:
            step = await self._finish(state)
            if step.blocked:
                return self._blocked(raw, state, released)
            released += step.released
            if not await self._held_ok(state):
                return self._blocked(raw, state, released)
            state.finished = True
        return self._passed(raw, delta, state, released, finish)

    async def _feed(self, state: ChoiceState, text: str) -> StreamStep:
        started = time.perf_counter()
        step = await state.moderator.afeed(text)
        self._record(state, "stream_chunk", time.perf_counter() - started)
        return step

    async def _finish(self, state: ChoiceState) -> StreamStep:
        started = time.perf_counter()
        step = await state.moderator.afinish()
        self._record(state, "post_call", time.perf_counter() - started)
        return step

    def _record(self, state: ChoiceState, stage: str, seconds: float) -> None:
        moderator = state.moderator
        new = moderator.verdicts[state.recorded :]
        if not new:
            return
        state.recorded = len(moderator.verdicts)
        state.verdicts.extend(new)
        checked = moderator.text if moderator.blocked else moderator.released_text
        self.service.record(self.ctx, new, [checked] * len(new), stage=stage, seconds=seconds)

    async def _held_ok(self, state: ChoiceState) -> bool:
        """Check the held tool calls / refusal of a finishing choice; False when blocked."""
        text = state.held_text()
        if not text:
            return True
        checked = await self.service.check(
            self.ctx, [text], Role.RESPONSE, stage="post_call", prompts=[self.context]
        )
        state.verdicts.extend(checked.verdicts)
        return not checked.blocked

    def _passed(
        self,
        raw: dict[str, Any],
        delta: dict[str, Any],
        state: ChoiceState,
        released: str,
        finish: Any,
        *,
        end: bool = False,
    ) -> dict[str, Any] | None:
        if released:
            state.released_any = True
        released = state.restore(released, end=end or finish is not None)
        logprobs = state.pop_logprobs(len(state.moderator.released_text))
        base = {"index": raw.get("index", state.index), **state.passing_choice}
        base["finish_reason"] = finish
        if finish is not None:
            base.update(state.choice_extra)
        if self.chat:
            new_delta = dict(state.passing)
            if released or "role" in new_delta:
                new_delta["content"] = released
            if finish is not None:
                held = state.held_fields()
                new_delta.update(restore_payload(held, self.vault.restore) if self.vault else held)
            if not new_delta and finish is None:
                return None
            return {**base, "delta": new_delta, "logprobs": logprobs}
        if not released and finish is None:
            return None
        return {**base, "text": released, "logprobs": logprobs}

    def _blocked(self, raw: dict[str, Any], state: ChoiceState, released: str) -> dict[str, Any]:
        state.blocked = True
        sep = "\n\n" if state.released_any or released else ""
        text = f"{state.restore(released, end=True)}{sep}{self.refusal}"
        # Nothing of the blocked choice but its index (no held fields, reasoning or logprobs).
        base = {"index": state.index, "finish_reason": "content_filter", "logprobs": None}
        if self.chat:
            return {**base, "delta": {"content": text}}
        return {**base, "text": text}

    async def _finish_all(self) -> list[bytes]:
        """At the end of the upstream stream: final checks for choices left open."""
        out: list[bytes] = []
        for state in self.choices.values():
            if state.blocked or state.finished:
                continue
            step = await self._finish(state)
            state.finished = True
            state.passing, state.passing_choice = {}, {}  # already sent with their chunk
            raw = {"index": state.index, "finish_reason": None}
            if step.blocked:
                choice = self._blocked(raw, state, "")
            else:
                choice = self._passed(raw, {}, state, step.released, None, end=True) or {}
            if choice:
                chunk: dict[str, Any] = {**self.template, "choices": [choice]}
                verdicts: list[Verdict] = [
                    v for v in state.verdicts if v.action is not Action.ALLOW
                ]
                if verdicts:
                    chunk["guardrail"] = guardrail_field(verdicts, "stream")
                out.append(encode(chunk))
        return out

    def _object(self) -> str:
        return "chat.completion.chunk" if self.chat else "text_completion"
