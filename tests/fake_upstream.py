"""A scripted OpenAI-compatible upstream served over real HTTP on 127.0.0.1, for tests.

The real ``openai`` client (or httpx) talks to it, so the client's own parsing is exercised::

    with FakeUpstream() as up:
        up.script("/v1/chat/completions", chat_reply("Hello!"), chat_stream("Hel", "lo!"))
        client = OpenAI(base_url=up.base_url, api_key="test")
        ...
        assert up.requests[0].body["messages"][0]["content"] == "Hi"

Routes: ``/v1/chat/completions``, ``/v1/completions``, ``/v1/responses``, ``/v1/embeddings``,
``/v1/messages`` (Anthropic's Messages API) (POST) and ``/v1/models`` (GET). Scripted replies are served in order per path; once a path's
queue is empty it answers with a default reply. Every request is recorded (method, path, headers,
JSON body). Replies can be JSON, SSE streams (optionally cut mid-way), errors, and delayed.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "FakeUpstream",
    "RecordedRequest",
    "Reply",
    "StreamReply",
    "chat_completion",
    "chat_reply",
    "chat_stream",
    "completion_reply",
    "completion_stream",
    "embeddings_reply",
    "error_reply",
    "message_body",
    "messages_reply",
    "messages_stream",
    "responses_reply",
    "responses_stream",
]

MODEL = "fake-model"
CREATED = 1_700_000_000
# A benign question and answer (~600 characters) for benchmarks that stream through a guard.
BASIL_QUESTION = "How do I keep basil fresh for longer?"
BASIL_ANSWER = (
    "Treat basil like cut flowers. Trim the stems and stand them in a glass of water at room "
    "temperature. Keep the glass out of direct sun, and change the water every day or two. "
    "Do not put basil in the fridge, because the cold turns its leaves black within a day. "
    "If you have more than you can use, blend the leaves with olive oil and freeze the paste "
    "in an ice cube tray. Dried basil keeps for months, but it loses most of its aroma. "
    "Growing a pot on a sunny windowsill is the easiest way to always have fresh leaves. "
    "Pinch off the flower buds as they appear, so the plant keeps making leaves."
)


@dataclass(frozen=True)
class Reply:
    """A JSON reply: status, body, extra headers, and a delay before answering."""

    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass(frozen=True)
class StreamReply:
    """An SSE stream of JSON events.

    ``events`` are ``(event_name | None, payload)`` pairs; ``done`` ends with ``data: [DONE]``;
    ``cut_after`` drops the connection after that many events (no terminator at all);
    ``chunk_delay_s`` sleeps before each event; ``close_delimited`` sends the body without
    chunked framing or a length, ended by closing the connection (so a cut reads as a clean
    end to the client).
    """

    events: tuple[tuple[str | None, Any], ...]
    done: bool = True
    cut_after: int | None = None
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    status: int = 200
    close_delimited: bool = False


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes = b""


# -- reply builders ------------------------------------------------------------------------


def chat_completion(
    *contents: str | None,
    tool_calls: Sequence[dict[str, str]] | None = None,
    finish_reason: str | None = None,
    model: str = MODEL,
) -> dict[str, Any]:
    """A ``chat.completion`` body with one choice per content (``None`` content is allowed).

    ``tool_calls`` (``{"name": ..., "arguments": ...}``) go on the first choice.
    """
    contents = contents or ("Hello! How can I help?",)
    choices = []
    for i, content in enumerate(contents):
        message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
        reason = finish_reason or "stop"
        if tool_calls and i == 0:
            message["tool_calls"] = [
                {"id": f"call_{k}", "type": "function", "function": dict(tc)}
                for k, tc in enumerate(tool_calls)
            ]
            reason = finish_reason or "tool_calls"
        choices.append({"index": i, "message": message, "logprobs": None, "finish_reason": reason})
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": choices,
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    }


def chat_reply(*contents: str | None, **kwargs: Any) -> Reply:
    """A JSON chat completion reply (see ``chat_completion``)."""
    delay = float(kwargs.pop("delay_s", 0.0))
    return Reply(chat_completion(*contents, **kwargs), delay_s=delay)


def _chat_chunk(index: int, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def chat_stream(
    *pieces: str,
    choices: Sequence[Sequence[str]] | None = None,
    tool_calls: Sequence[dict[str, str]] | None = None,
    finish_reason: str | None = None,
    **options: Any,
) -> StreamReply:
    """A chat SSE stream: a role chunk, one chunk per piece, then a finish chunk per choice.

    ``choices`` gives pieces per choice (n > 1; interleaved like the real API). ``tool_calls``
    streams function calls on choice 0, each arguments string in two halves.
    """
    per_choice = [list(c) for c in choices] if choices is not None else [list(pieces)]
    events: list[dict[str, Any]] = [
        _chat_chunk(i, {"role": "assistant", "content": ""}, None) for i in range(len(per_choice))
    ]
    for k in range(max((len(c) for c in per_choice), default=0)):
        for i, chunks in enumerate(per_choice):
            if k < len(chunks):
                events.append(_chat_chunk(i, {"content": chunks[k]}, None))
    for k, tc in enumerate(tool_calls or ()):
        args = tc.get("arguments", "")
        half = len(args) // 2
        head = {"index": k, "id": f"call_{k}", "type": "function"}
        events.append(
            _chat_chunk(
                0,
                {"tool_calls": [{**head, "function": {"name": tc["name"], "arguments": ""}}]},
                None,
            )
        )
        for part in (args[:half], args[half:]):
            events.append(
                _chat_chunk(
                    0, {"tool_calls": [{"index": k, "function": {"arguments": part}}]}, None
                )
            )
    for i in range(len(per_choice)):
        reason = finish_reason or ("tool_calls" if tool_calls and i == 0 else "stop")
        events.append(_chat_chunk(i, {}, reason))
    return StreamReply(tuple((None, e) for e in events), **options)


def completion_reply(*texts: str, **kwargs: Any) -> Reply:
    """A legacy ``text_completion`` JSON reply with one choice per text."""
    texts = texts or ("Hello!",)
    body = {
        "id": "cmpl-fake",
        "object": "text_completion",
        "created": CREATED,
        "model": MODEL,
        "choices": [
            {"index": i, "text": t, "logprobs": None, "finish_reason": "stop"}
            for i, t in enumerate(texts)
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }
    return Reply(body, **kwargs)


def completion_stream(*pieces: str, **options: Any) -> StreamReply:
    """A legacy completions SSE stream."""

    def chunk(text: str, finish: str | None) -> dict[str, Any]:
        return {
            "id": "cmpl-fake",
            "object": "text_completion",
            "created": CREATED,
            "model": MODEL,
            "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}],
        }

    events = [chunk(p, None) for p in pieces] + [chunk("", "stop")]
    return StreamReply(tuple((None, e) for e in events), **options)


def _response_object(text: str, status: str = "completed") -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    output = [
        {
            "type": "message",
            "id": "msg_fake",
            "status": status,
            "role": "assistant",
            "content": content if status == "completed" else [],
        }
    ]
    return {
        "id": "resp_fake",
        "object": "response",
        "created_at": CREATED,
        "status": status,
        "model": MODEL,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "metadata": {},
        "temperature": 1.0,
        "top_p": 1.0,
    }


def responses_reply(text: str = "Hello from responses!", **kwargs: Any) -> Reply:
    """A Responses API JSON reply."""
    return Reply(_response_object(text), **kwargs)


def responses_stream(*pieces: str, **options: Any) -> StreamReply:
    """A Responses API SSE stream (typed events, no ``[DONE]``, like the real API): created,
    in_progress, the message item and its output_text part added, one delta per piece, the
    part's and the item's done events, completed."""
    text = "".join(pieces)
    base = {"item_id": "msg_fake", "output_index": 0, "content_index": 0}
    item = {"id": "msg_fake", "type": "message", "status": "in_progress", "role": "assistant"}
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    done_item = _response_object(text)["output"][0]
    events: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": _response_object("", "in_progress")}),
        ("response.in_progress", {"response": _response_object("", "in_progress")}),
        ("response.output_item.added", {"output_index": 0, "item": {**item, "content": []}}),
        ("response.content_part.added", {**base, "part": part}),
    ]
    events += [("response.output_text.delta", {**base, "delta": p, "logprobs": []}) for p in pieces]
    events += [
        ("response.output_text.done", {**base, "text": text, "logprobs": []}),
        ("response.content_part.done", {**base, "part": {**part, "text": text}}),
        ("response.output_item.done", {"output_index": 0, "item": done_item}),
        ("response.completed", {"response": _response_object(text)}),
    ]
    numbered = tuple(
        (name, {"type": name, "sequence_number": i, **payload})
        for i, (name, payload) in enumerate(events)
    )
    return StreamReply(numbered, **{"done": False, **options})


def message_body(
    *texts: str, tool_use: dict[str, Any] | None = None, stop_reason: str = "end_turn"
) -> dict[str, Any]:
    """An Anthropic ``message`` with one text block per text and an optional tool_use block
    (``{"name": ..., "input": {...}}``)."""
    content: list[dict[str, Any]] = [{"type": "text", "text": t} for t in texts]
    if tool_use is not None:
        content.append({"type": "tool_use", "id": "toolu_fake", **tool_use})
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": content,
        "stop_reason": "tool_use" if tool_use is not None else stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 9},
    }


def messages_reply(*texts: str, **kwargs: Any) -> Reply:
    """An Anthropic Messages JSON reply (see ``message_body``)."""
    tool_use = kwargs.pop("tool_use", None)
    return Reply(message_body(*(texts or ("Hello from Claude!",)), tool_use=tool_use), **kwargs)


def messages_stream(
    *pieces: str, tool_use: dict[str, Any] | None = None, **options: Any
) -> StreamReply:
    """An Anthropic Messages SSE stream: message_start, a ping, one text block streamed in
    ``pieces``, an optional tool_use block whose input JSON comes in two halves, then
    message_delta and message_stop (named events, no ``[DONE]``, like the real API)."""
    start = {**message_body(), "content": [], "stop_reason": None}
    start["usage"] = {"input_tokens": 12, "output_tokens": 1}
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"message": start}),
        ("ping", {}),
    ]
    if pieces:
        events.append(
            ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
        )
        events += [
            ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": p}})
            for p in pieces
        ]
        events.append(("content_block_stop", {"index": 0}))
    if tool_use is not None:
        index = 1 if pieces else 0
        block = {"type": "tool_use", "id": "toolu_fake", "name": tool_use["name"], "input": {}}
        events.append(("content_block_start", {"index": index, "content_block": block}))
        args = json.dumps(tool_use["input"])
        for half in (args[: len(args) // 2], args[len(args) // 2 :]):
            delta = {"type": "input_json_delta", "partial_json": half}
            events.append(("content_block_delta", {"index": index, "delta": delta}))
        events.append(("content_block_stop", {"index": index}))
    reason = "tool_use" if tool_use is not None else "end_turn"
    events += [
        (
            "message_delta",
            {
                "delta": {"stop_reason": reason, "stop_sequence": None},
                "usage": {"output_tokens": 9},
            },
        ),
        ("message_stop", {}),
    ]
    typed = tuple((name, {"type": name, **payload}) for name, payload in events)
    return StreamReply(typed, **{"done": False, **options})


def embeddings_reply(count: int = 1, dim: int = 4) -> Reply:
    """An embeddings JSON reply."""
    data = [
        {"object": "embedding", "index": i, "embedding": [0.1 * (k + 1) for k in range(dim)]}
        for i in range(count)
    ]
    usage = {"prompt_tokens": count, "total_tokens": count}
    return Reply({"object": "list", "data": data, "model": MODEL, "usage": usage})


def error_reply(
    status: int,
    message: str = "upstream error",
    *,
    type: str = "invalid_request_error",
    code: str | None = None,
    **kwargs: Any,
) -> Reply:
    """An error status with OpenAI's error body."""
    body = {"error": {"message": message, "type": type, "param": None, "code": code}}
    return Reply(body, status=status, **kwargs)


_MODELS = Reply(
    {
        "object": "list",
        "data": [{"id": MODEL, "object": "model", "created": CREATED, "owned_by": "fake"}],
    }
)
_DEFAULTS: dict[str, Reply | StreamReply] = {
    "/v1/chat/completions": chat_reply(),
    "/v1/completions": completion_reply(),
    "/v1/responses": responses_reply(),
    "/v1/embeddings": embeddings_reply(),
    "/v1/messages": messages_reply(),
    "/v1/models": _MODELS,
}

_STREAM_DEFAULTS: dict[str, StreamReply] = {
    "/v1/chat/completions": chat_stream("Hello! ", "How can ", "I help?"),
    "/v1/completions": completion_stream("Hello! ", "How can ", "I help?"),
    "/v1/messages": messages_stream("Hello! ", "How can ", "I help?"),
    "/v1/responses": responses_stream("Hello! ", "How can ", "I help?"),
}


def _normalise(path: str) -> str:
    path = "/" + path.lstrip("/")
    return path if path.startswith("/v1/") else "/v1" + path


# -- the server ----------------------------------------------------------------------------


class FakeUpstream:
    """A scripted OpenAI-compatible HTTP server on 127.0.0.1 (a context manager).

    Attributes:
        base_url: ``http://127.0.0.1:PORT/v1``.
        requests: every request received, in order.
        echo_auth: when True, every reply echoes the request's ``authorization`` header back
            in the ``x-request-id``, ``openai-organization`` and ``x-echo-authorization``
            response headers (an upstream that leaks the key it was sent).
    """

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.echo_auth = False
        self._queues: dict[str, deque[Reply | StreamReply]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeUpstream is not running; use it as a context manager")
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def script(self, path: str, *replies: Reply | StreamReply) -> None:
        """Queue replies for a path (``/v1/chat/completions`` or ``chat/completions``)."""
        with self._lock:
            self._queues.setdefault(_normalise(path), deque()).extend(replies)

    def next_reply(self, path: str, *, stream: bool = False) -> Reply | StreamReply | None:
        with self._lock:
            queue = self._queues.get(path)
            if queue:
                return queue.popleft()
        if stream and path in _STREAM_DEFAULTS:
            return _STREAM_DEFAULTS[path]  # an unscripted `"stream": true` request gets SSE
        return _DEFAULTS.get(path)

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def calls(self, path: str) -> list[RecordedRequest]:
        """The recorded requests to one path."""
        path = _normalise(path)
        return [r for r in self.requests if r.path == path]

    def __enter__(self) -> FakeUpstream:
        handler = type("_BoundHandler", (_Handler,), {"upstream": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    upstream: FakeUpstream
    protocol_version = "HTTP/1.1"
    timeout = 10  # idle keep-alive connections close after this
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle's algorithm and
    # delayed ACKs add ~40 ms to every reply.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def handle(self) -> None:
        # A client that closes a stream early resets the connection: that is not an error here.
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            super().handle()

    def do_GET(self) -> None:
        self._handle(None, b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        self._handle(body, raw)

    def _handle(self, body: Any, raw: bytes) -> None:
        path = self.path.split("?", 1)[0]
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.upstream.record(RecordedRequest(self.command, path, headers, body, raw))
        stream = isinstance(body, dict) and body.get("stream") is True
        reply = self.upstream.next_reply(path, stream=stream)
        if reply is None:
            reply = error_reply(404, f"no route {path}", code="not_found")
        time.sleep(reply.delay_s)
        if isinstance(reply, StreamReply):
            self._stream(reply)
        else:
            self._json(reply)

    def _echo_headers(self) -> None:
        auth = self.headers.get("authorization")
        if self.upstream.echo_auth and auth:
            for name in ("x-request-id", "openai-organization", "x-echo-authorization"):
                self.send_header(name, f"echo {auth}")
        else:
            self.send_header("x-request-id", "req_fake")

    def _json(self, reply: Reply) -> None:
        data = json.dumps(reply.body).encode()
        self.send_response(reply.status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self._echo_headers()
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, reply: StreamReply) -> None:
        self.send_response(reply.status)
        self.send_header("content-type", "text/event-stream")
        self._echo_headers()
        if reply.close_delimited:
            self.send_header("connection", "close")
            self.end_headers()
            self.close_connection = True
            self._close_delimited(reply)
            return
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for i, (name, payload) in enumerate(reply.events):
                if reply.cut_after is not None and i >= reply.cut_after:
                    # Drop the connection without the chunked terminator: the client sees a
                    # truncated body, as when an upstream dies mid-stream.
                    self.wfile.flush()
                    self.close_connection = True
                    return
                time.sleep(reply.chunk_delay_s)
                prefix = f"event: {name}\n" if name else ""
                self._chunk(f"{prefix}data: {json.dumps(payload)}\n\n".encode())
            if reply.done:
                self._chunk(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    def _close_delimited(self, reply: StreamReply) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for i, (name, payload) in enumerate(reply.events):
                if reply.cut_after is not None and i >= reply.cut_after:
                    break  # the connection closes: to the client, the body simply ends
                time.sleep(reply.chunk_delay_s)
                prefix = f"event: {name}\n" if name else ""
                self.wfile.write(f"{prefix}data: {json.dumps(payload)}\n\n".encode())
                self.wfile.flush()
            else:
                if reply.done:
                    self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()
