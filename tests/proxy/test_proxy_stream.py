"""Streaming (SSE) chat and text completions: hold-back moderation through the proxy."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tests.fake_upstream import (
    FakeUpstream,
    StreamReply,
    chat_stream,
    completion_stream,
)

USER = [{"role": "user", "content": "tell me"}]


def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key="sk-caller", max_retries=0, timeout=20)


def chat_chunks(base: str, **kwargs: Any) -> list[Any]:
    stream = client(base).chat.completions.create(model="m", messages=USER, stream=True, **kwargs)
    return list(stream)


def text_of(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def raw_events(base: str, body: dict[str, Any]) -> list[Any]:
    events = []
    with httpx.stream("POST", f"{base}/chat/completions", json=body, timeout=20) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                data = line.removeprefix("data: ")
                events.append(data if data == "[DONE]" else json.loads(data))
    return events


def test_allowed_stream_arrives_whole(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy(stream_check_every=10)
    pieces = ["The sky ", "is blue. ", "Grass is ", "green. ", "Done"]
    fake_upstream.script("/v1/chat/completions", chat_stream(*pieces))
    chunks = chat_chunks(base)
    assert text_of(chunks) == "".join(pieces)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert getattr(chunks[-1], "guardrail", None) is None
    # the proxy keeps the upstream's ids
    assert {c.id for c in chunks} == {"chatcmpl-fake"}


def test_stream_released_only_after_checks(make_proxy, fake, fake_upstream: FakeUpstream):
    base = make_proxy(stream_check_every=10)
    pieces = ["First sentence here. ", "Second sentence there. ", "Third one. "]
    fake_upstream.script("/v1/chat/completions", chat_stream(*pieces))
    chunks = chat_chunks(base)
    released = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    checked = [s.text for batch in fake.calls for s in batch if s.role == "response"]
    # every released prefix was checked before it went out
    so_far = ""
    for piece in released:
        so_far += piece
        assert so_far in checked
    assert so_far == "".join(pieces)


def test_blocked_stream_ends_with_content_filter(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy(stream_check_every=10)
    pieces = ["Hello there. ", "This is fine. ", "Now BLOCK", "ME secrets. ", "more text. "]
    fake_upstream.script("/v1/chat/completions", chat_stream(*pieces))
    events = raw_events(base, {"model": "m", "messages": USER, "stream": True})
    assert events[-1] == "[DONE]"
    last = events[-2]
    assert last["choices"][0]["finish_reason"] == "content_filter"
    assert last["guardrail"]["action"] == "block"
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events[:-1])
    assert "BLOCKME" not in text
    assert "secrets" not in text
    assert text.startswith("Hello there. This is fine. ")
    assert text.endswith("Sorry, I can't help with that.")


def test_flag_mid_stream_is_reported_in_the_final_chunk(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy(stream_check_every=10)
    pieces = ["A calm start. ", "Then FLAG", "ME words. ", "The end."]
    fake_upstream.script("/v1/chat/completions", chat_stream(*pieces))
    with client(base).chat.completions.with_streaming_response.create(
        model="m", messages=USER, stream=True
    ) as raw:
        assert raw.headers["x-guardrail-action"] == "allow"  # the prompt was fine
        chunks = list(raw.parse())
    assert text_of(chunks) == "".join(pieces)
    final = chunks[-1]
    assert final.choices[0].finish_reason == "stop"
    assert final.guardrail["action"] == "flag"
    assert "unsafe" in final.guardrail["categories"]


def test_blocked_prompt_never_opens_a_stream(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy()
    with pytest.raises(openai.BadRequestError) as info:
        client(base).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "BLOCKME"}], stream=True
        )
    assert info.value.code == "content_filter"
    assert fake_upstream.calls("/v1/chat/completions") == []


def test_flagged_prompt_stream_has_headers(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy()
    fake_upstream.script("/v1/chat/completions", chat_stream("ok"))
    with client(base).chat.completions.with_streaming_response.create(
        model="m", messages=[{"role": "user", "content": "FLAGME"}], stream=True
    ) as raw:
        assert raw.headers["x-guardrail-action"] == "flag"
        assert text_of(list(raw.parse())) == "ok"


def test_streamed_tool_calls_are_held_and_checked(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy()
    fake_upstream.script(
        "/v1/chat/completions",
        chat_stream("Calling. ", tool_calls=[{"name": "run", "arguments": '{"cmd": "ls -la"}'}]),
        chat_stream("Calling. ", tool_calls=[{"name": "run", "arguments": '{"cmd": "BLOCKME"}'}]),
    )
    chunks = chat_chunks(base)
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert len(calls) == 1  # one complete call, released at the end
    assert calls[0].function.name == "run"
    assert calls[0].function.arguments == '{"cmd": "ls -la"}'
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    blocked = chat_chunks(base)
    assert not [tc for c in blocked if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert blocked[-1].choices[0].finish_reason == "content_filter"


def test_each_choice_is_moderated_separately(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy(stream_check_every=5)
    fake_upstream.script(
        "/v1/chat/completions",
        chat_stream(choices=[["A fine. ", "answer. "], ["B BLOCK", "ME. ", "more"]]),
    )
    events = raw_events(base, {"model": "m", "messages": USER, "stream": True, "n": 2})
    by_choice: dict[int, str] = {0: "", 1: ""}
    finish: dict[int, str] = {}
    for e in events[:-1]:
        for ch in e["choices"]:
            by_choice[ch["index"]] += ch["delta"].get("content") or ""
            if ch["finish_reason"]:
                finish[ch["index"]] = ch["finish_reason"]
    assert by_choice[0] == "A fine. answer. "
    assert "BLOCKME" not in by_choice[1]
    assert finish == {0: "stop", 1: "content_filter"}


def test_logprobs_are_released_with_their_text(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy(stream_check_every=5)

    def event(choice: dict) -> tuple[None, dict]:
        chunk = {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m"}
        return None, {**chunk, "choices": [choice]}

    events = []
    for i, piece in enumerate(["One. ", "Two. ", "Three."]):
        lp = {"content": [{"token": piece, "logprob": -0.1 * i, "bytes": None, "top_logprobs": []}]}
        delta = {"content": piece}
        events.append(event({"index": 0, "delta": delta, "logprobs": lp, "finish_reason": None}))
    events.append(event({"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}))
    fake_upstream.script("/v1/chat/completions", StreamReply(tuple(events)))
    out = raw_events(base, {"model": "m", "messages": USER, "stream": True, "logprobs": True})
    tokens = [
        t["token"]
        for e in out[:-1]
        for ch in e["choices"]
        if ch["logprobs"]
        for t in ch["logprobs"]["content"]
    ]
    assert tokens == ["One. ", "Two. ", "Three."]


def test_usage_chunk_passes_through(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy()
    reply = chat_stream("hi")
    usage = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    fake_upstream.script("/v1/chat/completions", StreamReply((*reply.events, (None, usage))))
    chunks = chat_chunks(base, stream_options={"include_usage": True})
    assert chunks[-1].usage.total_tokens == 2


def test_completions_stream_allow_flag_block(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy(stream_check_every=8)
    c = client(base)
    fake_upstream.script(
        "/v1/completions",
        completion_stream("Once upon. ", "a time. ", "the end."),
        completion_stream("Once upon. ", "a FLAGME time. ", "the end."),
        completion_stream("Once upon. ", "a BLOCKME time. ", "the end."),
    )
    allowed = list(c.completions.create(model="m", prompt="story", stream=True))
    assert "".join(ch.choices[0].text for ch in allowed) == "Once upon. a time. the end."
    flagged = list(c.completions.create(model="m", prompt="story", stream=True))
    assert flagged[-1].guardrail["action"] == "flag"
    blocked = list(c.completions.create(model="m", prompt="story", stream=True))
    text = "".join(ch.choices[0].text for ch in blocked)
    assert "BLOCKME" not in text
    assert blocked[-1].choices[0].finish_reason == "content_filter"


def test_stream_without_done_ends_with_an_error_event(make_proxy, fake_upstream: FakeUpstream):
    # Issue 17 (7): a stream that closes without [DONE] may be cut short: the text that passed
    # is released, then an error event (no [DONE]) tells the client the answer is incomplete.
    base = make_proxy()
    fake_upstream.script("/v1/chat/completions", chat_stream("no ", "done marker", done=False))
    received = []
    with pytest.raises(openai.APIError, match="without its \\[DONE\\] terminator"):
        for chunk in client(base).chat.completions.create(model="m", messages=USER, stream=True):
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "no done marker"
