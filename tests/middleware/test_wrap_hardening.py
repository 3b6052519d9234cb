"""Issue 17 (1)-(2) for the client wrapper: a blocked answer keeps no logprobs, top_logprobs or
reasoning (on_block="refuse"), and reasoning is checked, non-streamed and streamed."""

from __future__ import annotations

from typing import Any

import pytest

from guardrail import ContentBlocked
from tests.fake_upstream import FakeUpstream, Reply, StreamReply, chat_completion
from tests.middleware.conftest import BLOCK, user

CHAT = "/v1/chat/completions"


def _logprobs(text: str) -> dict[str, Any]:
    tokens = [text[i : i + 3] for i in range(0, len(text), 3)]
    return {
        "content": [
            {
                "token": t,
                "logprob": -0.1,
                "bytes": list(t.encode()),
                "top_logprobs": [{"token": t, "logprob": -0.1, "bytes": list(t.encode())}],
            }
            for t in tokens
        ],
        "refusal": None,
    }


def _answer(content: str, **message: Any) -> dict[str, Any]:
    body = chat_completion(content)
    body["choices"][0]["message"].update(message)
    body["choices"][0]["logprobs"] = _logprobs(content)
    return body


def test_refused_choice_keeps_no_logprobs_or_reasoning(guard, openai_client, fake_upstream):
    client = guard.wrap(openai_client, on_block="refuse")
    bad = f"Here is how: {BLOCK} the whole city."
    fake_upstream.script(CHAT, Reply(_answer(bad, reasoning_content=f"plan: {bad}")))
    reply = client.chat.completions.create(model="m", messages=user("hi"), logprobs=True)
    choice = reply.choices[0]
    assert choice.finish_reason == "content_filter"
    assert choice.logprobs is None
    dumped = reply.model_dump_json()
    assert BLOCK not in dumped and "whole city" not in dumped and "plan:" not in dumped
    # legacy completions
    body = {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "text": bad,
                "logprobs": {"tokens": ["Her", BLOCK], "top_logprobs": [{BLOCK: -0.1}]},
                "finish_reason": "stop",
            }
        ],
    }
    fake_upstream.script("/v1/completions", Reply(body))
    done = client.completions.create(model="m", prompt="hi", logprobs=1)
    assert done.choices[0].logprobs is None and BLOCK not in done.model_dump_json()


def test_reasoning_content_is_checked(guard, openai_client, fake_upstream):
    client = guard.wrap(openai_client)
    fake_upstream.script(CHAT, Reply(_answer("I can't help.", reasoning_content=f"do {BLOCK}")))
    with pytest.raises(ContentBlocked):
        client.chat.completions.create(model="m", messages=user("hi"))


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def _stream(reasoning: list[str], content: str) -> StreamReply:
    events = [
        _chunk({"role": "assistant", "content": ""}),
        *(_chunk({"reasoning_content": r}) for r in reasoning),
        _chunk({"content": content}),
        _chunk({}, "stop"),
    ]
    return StreamReply(tuple((None, e) for e in events))


def test_streamed_reasoning_is_held_and_checked(guard, openai_client, fake_upstream: FakeUpstream):
    client = guard.wrap(openai_client, on_block="refuse")
    words = f"To do it you first {BLOCK} then wait for it all".split()
    fake_upstream.script(CHAT, _stream([w + " " for w in words] * 3, "I can't help."))
    chunks = list(client.chat.completions.create(model="m", messages=user("hi"), stream=True))
    dumped = "".join(c.model_dump_json() for c in chunks)
    assert BLOCK not in dumped and "first" not in dumped
    assert chunks[-1].choices[0].finish_reason == "content_filter"
    # safe reasoning arrives whole once its choice ends
    fake_upstream.script(CHAT, _stream(["Weather ", "question."], "Sunny."))
    chunks = list(client.chat.completions.create(model="m", messages=user("hi"), stream=True))
    reasoning = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
        for c in chunks
        if c.choices
    )
    assert reasoning == "Weather question."
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Sunny."
    assert chunks[-1].choices[0].finish_reason == "stop"
