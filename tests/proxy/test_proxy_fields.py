"""Issue 17 (1)-(2): no byte of a blocked answer by any field, no unmoderated request field.

Full OpenAI shapes (chat, completions, Responses; requests, answers and stream chunks) are
walked string by string: a harmful text is planted in each string field in turn and sent
through the proxy. A field that is not on ``fields.UNMODERATED`` must get the request refused
or the answer blocked, with no byte of the planted text reaching the client.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from guardrail.adapters.proxy.fields import (
    UNMODERATED,
    is_unmoderated,
    moderated_texts,
    string_fields,
)

from tests.fake_upstream import FakeUpstream, Reply, StreamReply

HARM = "BLOCKME"

SCHEMA = {
    "type": "object",
    "description": "where to look",
    "properties": {
        "city": {"type": "string", "description": "the city", "enum": ["Paris", "Rome"]},
        "when": {"type": "string", "format": "date", "title": "day"},
    },
    "required": ["city"],
}

CHAT_REQUEST: dict[str, Any] = {
    "model": "m",
    "messages": [
        {"role": "system", "content": "be nice"},
        {"role": "user", "name": "ann", "content": [{"type": "text", "text": "weather?"}]},
        {
            "role": "assistant",
            "content": None,
            "refusal": "no",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}}
            ],
        },
    ],
    "tools": [
        {
            "type": "function",
            "function": {"name": "get_weather", "description": "looks it up", "parameters": SCHEMA},
        }
    ],
    "functions": [{"name": "old_style", "description": "legacy", "parameters": SCHEMA}],
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "answer", "description": "the answer", "schema": SCHEMA},
    },
    "prediction": {"type": "content", "content": "It is sunny."},
    "stop": ["\n\n"],
    "user": "u-1",
    "metadata": {"team": "search"},
    "tool_choice": "auto",
    "x_future_field": "a field OpenAI may add later",
}

LOGPROBS = {
    "content": [
        {
            "token": "It",
            "logprob": -0.1,
            "bytes": [73, 116],
            "top_logprobs": [{"token": "It", "logprob": -0.1, "bytes": [73, 116]}],
        }
    ],
    "refusal": None,
}

CHAT_ANSWER: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "fake-model",
    "system_fingerprint": "fp_1",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "It is sunny.",
                "refusal": "not really",
                "reasoning_content": "The user asks about weather.",
                "tool_calls": [
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
                    }
                ],
                "annotations": [
                    {
                        "type": "url_citation",
                        "url_citation": {"url": "https://w/x", "title": "Weather"},
                    }
                ],
                "audio": {
                    "id": "a1",
                    "data": "AAAA",
                    "transcript": "It is sunny.",
                    "expires_at": 1,
                },
                "x_future_field": "more text",
            },
            "logprobs": LOGPROBS,
            "finish_reason": "stop",
            "x_choice_field": "choice-level text",
        }
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    "x_top_field": "top-level text",
}


def _chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "fake-model",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        **extra,
    }


CHAT_CHUNKS: list[dict[str, Any]] = [
    _chunk({"role": "assistant", "content": ""}),
    _chunk({"reasoning_content": "Thinking about "}),
    _chunk({"reasoning_content": "the weather."}),
    _chunk({"content": "It is "}),
    _chunk({"content": "sunny."}),
    _chunk({"refusal": "not really"}),
    _chunk(
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_3",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": '},
                }
            ]
        }
    ),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Rome"}'}}]}),
    _chunk({"x_future_delta": "future text"}),
    _chunk({}, "stop"),
    {"id": "chatcmpl-1", "object": "chat.completion.chunk", "x_note": "a chunk without choices"},
]

COMPLETIONS_REQUEST = {
    "model": "m",
    "prompt": "Once upon a time",
    "suffix": "the end",
    "stop": "\n",
    "user": "u-1",
    "x_future_field": "future text",
}

COMPLETIONS_ANSWER = {
    "id": "cmpl-1",
    "object": "text_completion",
    "created": 1,
    "model": "fake-model",
    "choices": [
        {
            "index": 0,
            "text": " there was a cat.",
            "logprobs": {
                "tokens": [" there"],
                "token_logprobs": [-0.1],
                "top_logprobs": [{" there": -0.1}],
                "text_offset": [0],
            },
            "finish_reason": "stop",
        }
    ],
    "x_top_field": "top-level text",
}

RESPONSES_REQUEST = {
    "model": "m",
    "instructions": "be brief",
    "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "weather?"}]},
        {
            "type": "function_call",
            "call_id": "c1",
            "name": "get_weather",
            "arguments": '{"city": "Paris"}',
        },
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
    ],
    "tools": [
        {"type": "function", "name": "get_weather", "description": "looks", "parameters": SCHEMA}
    ],
    "text": {"format": {"type": "json_schema", "name": "answer", "schema": SCHEMA}},
    "metadata": {"team": "search"},
    "user": "u-1",
    "reasoning": {"effort": "low"},
    "x_future_field": "future text",
}

RESPONSES_ANSWER = {
    "id": "resp_1",
    "object": "response",
    "created_at": 1,
    "status": "completed",
    "model": "fake-model",
    "instructions": "be brief",
    "output": [
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [{"type": "summary_text", "text": "thinking about weather"}],
        },
        {
            "type": "message",
            "id": "msg_1",
            "status": "completed",
            "role": "assistant",
            "content": [
                {
                    "type": "output_text",
                    "text": "It is sunny.",
                    "annotations": [{"type": "url_citation", "title": "Weather", "url": "u"}],
                    "logprobs": [{"token": "It", "logprob": -0.1}],
                }
            ],
        },
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "c2",
            "name": "get_weather",
            "arguments": '{"city": "Rome"}',
            "status": "completed",
        },
    ],
    "output_text": "It is sunny.",
    "tools": [],
    "metadata": {},
    "x_future_field": "future text",
}


def plantings(value: Any) -> Iterator[tuple[str, Any]]:
    """(path, a copy of value with that one string replaced by the harmful text), for every
    string value (property names, which are keys, are covered by
    test_schema_property_names_are_checked)."""
    values = [path for path, _ in string_fields(value) if path[-1:] != ("*",)]
    for k, path in enumerate(values):
        yield ".".join(path).replace(".[]", "[]"), _replace(copy.deepcopy(value), k)


def _replace(value: Any, target: int) -> Any:
    seen = -1

    def walk(v: Any) -> Any:
        nonlocal seen
        if isinstance(v, str):
            seen += 1
            return f"{HARM} plan" if seen == target else v
        if isinstance(v, dict):
            return {key: walk(item) for key, item in v.items()}
        if isinstance(v, list):
            return [walk(item) for item in v]
        return v

    return walk(value)


def listed(shape: str, path: str) -> bool:
    return is_unmoderated(shape, path)


@pytest.fixture
def proxy(make_proxy) -> str:
    return make_proxy(allow_media=True)


# -- the list itself --------------------------------------------------------------------------


def test_every_unmoderated_field_has_a_reason():
    for shape, fields in UNMODERATED.items():
        for path, reason in fields.items():
            assert isinstance(reason, str) and len(reason) > 10, (shape, path)


def test_moderated_texts_are_every_string_but_the_listed_ones():
    shapes = [
        ("chat.request", CHAT_REQUEST),
        ("chat.answer", CHAT_ANSWER),
        ("completions.request", COMPLETIONS_REQUEST),
        ("completions.answer", COMPLETIONS_ANSWER),
        ("responses.request", RESPONSES_REQUEST),
        ("responses.answer", RESPONSES_ANSWER),
        *(("chat.chunk", chunk) for chunk in CHAT_CHUNKS),
    ]
    for shape, sample in shapes:
        texts = moderated_texts(shape, sample)
        for path, text in string_fields(sample):
            if text and not is_unmoderated(shape, path):
                assert text in texts, (shape, path)
    # the fields the issue found unmoderated are moderated now
    chat = moderated_texts("chat.request", CHAT_REQUEST)
    for text in ("looks it up", "legacy", "the answer", "where to look", "It is sunny.", "city"):
        assert text in chat
    answer = moderated_texts("chat.answer", CHAT_ANSWER)
    assert "The user asks about weather." in answer
    assert "It" not in answer  # logprobs tokens are listed (dropped with a blocked choice)


# -- requests: every field checked before anything is forwarded -------------------------------


@pytest.mark.parametrize(
    ("path", "sample", "shape"),
    [
        ("/chat/completions", CHAT_REQUEST, "chat.request"),
        ("/completions", COMPLETIONS_REQUEST, "completions.request"),
        ("/responses", RESPONSES_REQUEST, "responses.request"),
    ],
)
def test_a_harmful_text_in_any_request_field_is_blocked_unless_listed(
    proxy, fake_upstream: FakeUpstream, path, sample, shape
):
    assert httpx.post(f"{proxy}{path}", json=sample).status_code == 200
    checked = 0
    for field, planted in plantings(sample):
        before = len(fake_upstream.requests)
        r = httpx.post(f"{proxy}{path}", json=planted)
        if listed(shape, field):
            assert r.status_code == 200, (field, r.text)
            continue
        checked += 1
        assert r.status_code == 400, (field, r.text)
        assert r.json()["error"]["code"] == "content_filter", field
        assert len(fake_upstream.requests) == before, field
    assert checked >= 3


def test_schema_property_names_are_checked(proxy, fake_upstream: FakeUpstream):
    schema = {"type": "object", "properties": {f"{HARM}_field": {"type": "string"}}}
    body = {
        **CHAT_REQUEST,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": schema}}],
    }
    r = httpx.post(f"{proxy}/chat/completions", json=body)
    assert r.status_code == 400 and r.json()["error"]["code"] == "content_filter"


# -- answers: no byte of a blocked answer -----------------------------------------------------


@pytest.mark.parametrize(
    ("path", "request_body", "sample", "shape"),
    [
        (
            "/chat/completions",
            {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            CHAT_ANSWER,
            "chat.answer",
        ),
        ("/completions", {"model": "m", "prompt": "hi"}, COMPLETIONS_ANSWER, "completions.answer"),
        ("/responses", {"model": "m", "input": "hi"}, RESPONSES_ANSWER, "responses.answer"),
    ],
)
def test_a_harmful_text_in_any_answer_field_is_blocked_unless_listed(
    proxy, fake_upstream: FakeUpstream, path, request_body, sample, shape
):
    fake_upstream.script(path, Reply(sample))
    r = httpx.post(f"{proxy}{path}", json=request_body)
    assert r.status_code == 200 and "guardrail" not in r.json()
    checked = 0
    for field, planted in plantings(sample):
        if listed(shape, field):
            continue
        checked += 1
        fake_upstream.script(path, Reply(planted))
        r = httpx.post(f"{proxy}{path}", json=request_body)
        assert r.status_code == 200, (field, r.text)
        assert HARM not in r.text, field
        assert r.json()["guardrail"]["action"] == "block", field
    assert checked >= 2


def test_a_harmful_text_in_any_stream_field_is_blocked_unless_listed(
    proxy, fake_upstream: FakeUpstream
):
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}

    def run(chunks: list[dict[str, Any]]) -> str:
        fake_upstream.script("/chat/completions", StreamReply(tuple((None, c) for c in chunks)))
        with httpx.stream("POST", f"{proxy}/chat/completions", json=body) as r:
            assert r.status_code == 200
            return r.read().decode()

    clean = run(CHAT_CHUNKS)
    assert "content_filter" not in clean and "Thinking about the weather." in clean
    checked = 0
    for k, chunk in enumerate(CHAT_CHUNKS):
        for field, planted in plantings(chunk):
            if listed("chat.chunk", field):
                continue
            checked += 1
            text = run([*CHAT_CHUNKS[:k], planted, *CHAT_CHUNKS[k + 1 :]])
            assert HARM not in text, field
            assert '"action":"block"' in text, field
    assert checked >= 8


# -- (1) logprobs, reasoning, chunks without choices ------------------------------------------


def _spelled_logprobs(text: str) -> dict[str, Any]:
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
        ]
    }


def test_blocked_choice_keeps_no_logprobs_or_reasoning(proxy, fake_upstream: FakeUpstream):
    bad = "Step one: BLOCKME the whole city."
    answer = copy.deepcopy(CHAT_ANSWER)
    choice = answer["choices"][0]
    choice["message"].update(content=bad, reasoning_content=f"I will explain: {bad}")
    choice["logprobs"] = _spelled_logprobs(bad)
    fake_upstream.script("/chat/completions", Reply(answer))
    c = openai.OpenAI(base_url=proxy, api_key="sk-caller", max_retries=0)
    r = c.chat.completions.with_raw_response.create(
        model="m", messages=[{"role": "user", "content": "hi"}], logprobs=True, top_logprobs=2
    )
    raw = r.http_response.text
    assert "BLO" not in raw and "whole city" not in raw and "I will explain" not in raw
    got = r.parse().choices[0]
    assert got.finish_reason == "content_filter" and got.logprobs is None
    # legacy completions: the logprobs of a blocked choice go too
    legacy = copy.deepcopy(COMPLETIONS_ANSWER)
    legacy["choices"][0].update(
        text=bad, logprobs={"tokens": ["BLO", "CKME"], "top_logprobs": [{"BLO": -0.1}]}
    )
    fake_upstream.script("/completions", Reply(legacy))
    r2 = httpx.post(f"{proxy}/completions", json={"model": "m", "prompt": "hi", "logprobs": 2})
    assert "BLO" not in r2.text and r2.json()["choices"][0]["logprobs"] is None


def test_streamed_reasoning_is_checked_before_release(proxy, fake_upstream: FakeUpstream):
    # The probe: the harmful text came through in 33 SSE reasoning events.
    words = f"To do it you first {HARM} then wait for it all".split()
    pieces = [w + " " for w in words] * 3
    chunks = [
        _chunk({"role": "assistant", "content": ""}),
        *(_chunk({"reasoning_content": p}) for p in pieces),
        _chunk({"content": "I can't help."}),
        _chunk({}, "stop"),
    ]
    assert len(pieces) == 33
    fake_upstream.script("/chat/completions", StreamReply(tuple((None, c) for c in chunks)))
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with httpx.stream("POST", f"{proxy}/chat/completions", json=body) as r:
        text = r.read().decode()
    assert HARM not in text and "first" not in text
    events = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]
    assert events[-1]["choices"][0]["finish_reason"] == "content_filter"


def test_safe_reasoning_arrives_whole_with_the_finish(proxy, fake_upstream: FakeUpstream):
    chunks = [
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"reasoning_content": "Weather "}),
        _chunk({"reasoning_content": "question."}),
        _chunk({"content": "Sunny."}),
        _chunk({}, "stop"),
    ]
    fake_upstream.script("/chat/completions", StreamReply(tuple((None, c) for c in chunks)))
    c = openai.OpenAI(base_url=proxy, api_key="sk-caller", max_retries=0)
    got = list(
        c.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    reasoning = "".join(getattr(ch.choices[0].delta, "reasoning_content", None) or "" for ch in got)
    assert reasoning == "Weather question."
    assert "".join(ch.choices[0].delta.content or "" for ch in got) == "Sunny."


def test_chunk_without_choices_is_checked(proxy, fake_upstream: FakeUpstream):
    chunks = [
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"content": "Fine so far."}),
        {"id": "chatcmpl-1", "object": "chat.completion.chunk", "x_note": f"{HARM} raw"},
        _chunk({}, "stop"),
    ]
    fake_upstream.script("/chat/completions", StreamReply(tuple((None, c) for c in chunks)))
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with httpx.stream("POST", f"{proxy}/chat/completions", json=body) as r:
        text = r.read().decode()
    assert HARM not in text and '"content_filter"' in text
    # a usage-only chunk (no text) still goes out
    usage = {
        "id": "c",
        "object": "chat.completion.chunk",
        "choices": [],
        "usage": {"total_tokens": 3},
    }
    fake_upstream.script(
        "/chat/completions",
        StreamReply(tuple((None, c) for c in [*chunks[:2], chunks[3], usage])),
    )
    with httpx.stream("POST", f"{proxy}/chat/completions", json=body) as r:
        assert '"total_tokens":3' in r.read().decode()
