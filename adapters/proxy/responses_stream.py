"""Streamed ``/v1/responses``: the Responses API's typed event stream, moderated as it flows.

Every ``*.delta`` event that carries text (output text, refusals, function-call arguments,
reasoning summaries, audio transcripts) goes through a ``StreamModerator`` keyed by its part
(event family, item, output and content index): its text is held back and re-emitted in an
event of the same type only after a passing check, and the part's ``*.done`` event (which
repeats the whole text) only after the final check. An output item whose text never came as
deltas is checked whole at its ``response.output_item.done``. Other events pass in order.
Outgoing events are renumbered (``sequence_number``), since the proxy adds and drops some.

A block ends the stream: no byte of the blocked part is sent. An output-text part gets the
policy's refusal as its last delta; then a ``response.incomplete`` event whose response has
``incomplete_details.reason: "content_filter"``, the refusal as its output, and the verdict
under ``guardrail``. If the upstream stream breaks off, the held text is checked and released
if it passes, then an ``error`` event ends the stream.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi.responses import Response, StreamingResponse

from guardrail.redaction import StreamRestorer, Vault, restore_payload
from guardrail.streaming import StreamModerator, StreamStep
from guardrail.types import Role, Verdict

from .errors import ProxyHTTPError
from .forwarding import upstream_error
from .service import ProxyService, RequestContext, guardrail_field
from .sse import encode, read_events
from .text import responses_texts
from .upstream import UpstreamReply, reply_headers

__all__ = ["ResponsesRelay", "refusal_output", "stream_responses"]

_Key = tuple[Any, ...]
_PART_FIELDS = ("item_id", "output_index", "content_index", "summary_index")


def refusal_output(refusal: str) -> list[dict[str, Any]]:
    """A Responses ``output`` holding only the policy's refusal, as an assistant message."""
    return [
        {
            "type": "message",
            "id": f"msg_guardrail_{uuid.uuid4().hex}",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": refusal, "annotations": []}],
        }
    ]


async def stream_responses(
    service: ProxyService,
    ctx: RequestContext,
    headers: dict[str, str],
    body: bytes,
    prompt: str,
    vault: Vault | None = None,
) -> Response:
    """Open the upstream stream and relay it, moderated; upstream errors come back as is.

    With a non-empty ``vault`` (the request was redacted), placeholders are restored in what
    is sent on, each held until it is whole.

    Raises:
        ProxyHTTPError: 502 / 504 when the upstream cannot be reached or times out.
    """
    upstream, ctx.upstream_s = await service.upstream.open_stream(
        "/responses", route=ctx.route, headers=headers, content=body
    )
    content_type = upstream.headers.get("content-type", "")
    if upstream.is_success and content_type.startswith("text/event-stream"):
        relay = ResponsesRelay(service, ctx, prompt, vault)
        out_headers = {**reply_headers(upstream.headers), **service.headers(ctx)}
        return StreamingResponse(
            relay.run(upstream), media_type="text/event-stream", headers=out_headers
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


@dataclass(slots=True)
class _Part:
    """One streamed text part: its moderator and the last delta event (a template)."""

    moderator: StreamModerator
    template: dict[str, Any]
    name: str | None
    recorded: int = 0
    released_any: bool = False
    finished: bool = False
    restorer: StreamRestorer | None = None

    def restore(self, text: str, *, end: bool) -> str:
        """Released text with the request's placeholders put back (a split one held)."""
        if self.restorer is None:
            return text
        out = self.restorer.feed(text)
        return out + self.restorer.flush() if end else out


class ResponsesRelay:
    """Rewrites one upstream Responses event stream: held-back deltas, checked items, refusals."""

    def __init__(
        self, service: ProxyService, ctx: RequestContext, prompt: str, vault: Vault | None = None
    ) -> None:
        self.service = service
        self.vault = vault
        self.ctx = ctx
        self.prompt = prompt
        self.refusal = ctx.guard.policy.refusal_message
        self.parts: dict[_Key, _Part] = {}
        self.response: dict[str, Any] = {}
        self.sequence = 0
        self.stopped = False

    async def run(self, upstream: httpx.Response) -> AsyncIterator[bytes]:
        """The caller's SSE bytes. Closes the upstream response however it ends."""
        try:
            async for event in read_events(upstream.aiter_lines()):
                if event.data.strip() == "[DONE]":
                    break
                out, stop = await self._event(event.name, event.data)
                for data in out:
                    yield data
                if stop:
                    return
            for data in await self._finish_open():
                yield data
        except httpx.TransportError as e:
            kind = "timeout" if isinstance(e, httpx.TimeoutException) else "stream_cut"
            self.service.metrics.upstream_errors.labels(self.ctx.route, kind).inc()
            for data in await self._finish_open():
                yield data
            if not self.stopped:
                message = "The upstream stream ended unexpectedly; the answer is incomplete."
                error = {"type": "error", "code": f"upstream_{kind}", "message": message}
                yield self._out({**error, "param": None}, "error")
        finally:
            await upstream.aclose()

    def _out(self, payload: dict[str, Any], name: str | None) -> bytes:
        """One outgoing event, numbered in the order the caller receives them."""
        if self.vault:
            payload = restore_payload(payload, self.vault.restore)
        payload = {**payload, "sequence_number": self.sequence}
        self.sequence += 1
        return encode(payload, name)

    async def _event(self, name: str | None, data: str) -> tuple[list[bytes], bool]:
        """Outgoing events for one upstream event, and whether to stop reading."""
        try:
            payload = json.loads(data)
        except ValueError:
            return [], False  # not JSON: nothing a client could use, and nothing to moderate
        if not isinstance(payload, dict):
            return [], False
        kind = str(payload.get("type") or name or "")
        if isinstance(payload.get("response"), dict):
            self.response = payload["response"]
        if kind.endswith(".delta") and isinstance(payload.get("delta"), str):
            return await self._delta(name, kind, payload)
        key = _key(kind, payload)
        if kind.endswith(".done") and key in self.parts:
            return await self._done(name, key, payload)
        if kind == "response.output_item.done" and isinstance(payload.get("item"), dict):
            blocked = await self._whole_item(payload)
            if blocked:
                return self._refuse(blocked, None), True
        stop = kind in ("response.completed", "response.incomplete", "response.failed", "error")
        self.stopped = self.stopped or stop
        return [self._out(payload, name)], stop

    async def _delta(
        self, name: str | None, kind: str, payload: dict[str, Any]
    ) -> tuple[list[bytes], bool]:
        key = _key(kind, payload)
        part = self.parts.get(key)
        if part is None:
            moderator = StreamModerator(
                self.ctx.guard,
                prompt=self.prompt,
                check_every=self.service.settings.stream_check_every,
            )
            restorer = self.vault.restorer() if self.vault else None
            part = self.parts[key] = _Part(moderator, payload, name, restorer=restorer)
        part.template = payload
        started = time.perf_counter()
        step = await part.moderator.afeed(payload["delta"])
        self._record(part, "stream_chunk", time.perf_counter() - started)
        if step.blocked:
            return self._refuse(self._blocking(part), part), True
        return self._released(part, step), False

    async def _done(
        self, name: str | None, key: _Key, payload: dict[str, Any]
    ) -> tuple[list[bytes], bool]:
        part = self.parts[key]
        if part.finished:
            return [self._out(payload, name)], False
        part.finished = True
        started = time.perf_counter()
        step = await part.moderator.afinish()
        self._record(part, "post_call", time.perf_counter() - started)
        if step.blocked:
            return self._refuse(self._blocking(part), part), True
        return [*self._released(part, step, end=True), self._out(payload, name)], False

    async def _whole_item(self, payload: dict[str, Any]) -> list[Verdict]:
        """Check an output item none of whose text came as deltas; its verdicts if blocked."""
        index = payload.get("output_index")
        item_id = payload["item"].get("id")
        if any(k[1] == item_id or (k[2] == index and index is not None) for k in self.parts):
            return []
        text = "\n".join(responses_texts(payload["item"], allow_media=True, param="output"))
        if not text:
            return []
        checked = await self.service.check(
            self.ctx, [text], Role.RESPONSE, stage="post_call", prompts=[self.prompt]
        )
        return checked.verdicts if checked.blocked else []

    def _record(self, part: _Part, stage: str, seconds: float) -> None:
        moderator = part.moderator
        new = moderator.verdicts[part.recorded :]
        if not new:
            return
        part.recorded = len(moderator.verdicts)
        checked = moderator.text if moderator.blocked else moderator.released_text
        self.service.record(self.ctx, new, [checked] * len(new), stage=stage, seconds=seconds)

    @staticmethod
    def _blocking(part: _Part) -> list[Verdict]:
        return [v for v in part.moderator.verdicts if v.blocked]

    def _released(self, part: _Part, step: StreamStep, *, end: bool = False) -> list[bytes]:
        text = part.restore(step.released, end=end)
        if not text:
            return []
        part.released_any = True
        return [self._delta_event(part, text)]

    def _delta_event(self, part: _Part, text: str) -> bytes:
        event = {**part.template, "delta": text}
        if "logprobs" in event:
            event["logprobs"] = []  # per-token data would reveal held-back tokens
        return self._out(event, part.name)

    def _refuse(self, verdicts: list[Verdict], part: _Part | None) -> list[bytes]:
        """The end of a blocked stream: the refusal and a ``response.incomplete`` event."""
        self.stopped = True
        out: list[bytes] = []
        if part is not None and str(part.template.get("type")) == "response.output_text.delta":
            sep = "\n\n" if part.released_any else ""
            out.append(self._delta_event(part, sep + self.refusal))
        response = {
            **self.response,
            "status": "incomplete",
            "incomplete_details": {"reason": "content_filter"},
            "output": refusal_output(self.refusal),
        }
        response.pop("output_text", None)
        field = guardrail_field(verdicts, "stream")
        response["guardrail"] = field
        event = {"type": "response.incomplete", "response": response, "guardrail": field}
        out.append(self._out(event, "response.incomplete"))
        return out

    async def _finish_open(self) -> list[bytes]:
        """At the end of the upstream stream: final checks for parts whose ``.done`` never
        came; their held text is released if it passes."""
        if self.stopped:
            return []
        out: list[bytes] = []
        for part in self.parts.values():
            if part.finished:
                continue
            part.finished = True
            started = time.perf_counter()
            step = await part.moderator.afinish()
            self._record(part, "post_call", time.perf_counter() - started)
            if step.blocked:
                return out + self._refuse(self._blocking(part), part)
            out += self._released(part, step, end=True)
        return out


def _key(kind: str, payload: dict[str, Any]) -> _Key:
    base = kind.rsplit(".", 1)[0]
    return (base, *(payload.get(f) for f in _PART_FIELDS))
