"""Non-streaming chat and text completions through the proxy, with the real openai client."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from guardrail.testing import FakeClassifier
from tests.fake_upstream import FakeUpstream, chat_reply, completion_reply

USER = [{"role": "user", "content": "Hello there"}]


def client(base_url: str, key: str = "sk-caller") -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=20)


def test_allowed_chat_is_forwarded_untouched(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy()
    raw = client(base).chat.completions.with_raw_response.create(
        model="fake-model",
        messages=USER,
        temperature=0.2,
        extra_body={"vendor_field": {"keep": [1, 2]}, "seed": 7},
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello! How can I help?"
    assert completion.choices[0].finish_reason == "stop"
    assert raw.headers["x-guardrail-action"] == "allow"
    assert raw.headers["x-guardrail-categories"] == ""
    assert raw.headers["x-guardrail-policy"] == "basic"
    assert raw.headers["x-request-id"] == "req_fake"  # upstream header passed back
    sent = fake_upstream.calls("/v1/chat/completions")[0].body
    assert sent["vendor_field"] == {"keep": [1, 2]}
    assert sent["seed"] == 7 and sent["temperature"] == 0.2
    assert sent["messages"] == USER


def test_blocked_prompt_is_400_content_filter_and_not_forwarded(
    make_proxy, fake_upstream: FakeUpstream
):
    base = make_proxy()
    with pytest.raises(openai.BadRequestError) as info:
        client(base).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "please BLOCKME now"}]
        )
    err = info.value
    assert err.status_code == 400
    assert err.code == "content_filter"
    body = err.response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == "invalid_request_error"
    assert body["guardrail"]["action"] == "block"
    assert body["guardrail"]["stage"] == "pre_call"
    assert body["guardrail"]["verdict"]["role"] == "prompt"
    assert body["guardrail"]["verdict"]["policy"] == "basic"
    assert err.response.headers["x-guardrail-action"] == "block"
    assert fake_upstream.calls("/v1/chat/completions") == []


def test_every_message_role_and_tool_call_is_checked(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy()
    messages = [
        {"role": "system", "content": "be nice"},
        {"role": "user", "content": "what is the weather"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"q": "BLOCKME"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    with pytest.raises(openai.BadRequestError):
        client(base).chat.completions.create(model="m", messages=messages)
    messages[2]["tool_calls"][0]["function"]["arguments"] = '{"q": "x"}'
    messages[3]["content"] = [{"type": "text", "text": "tool says BLOCKME"}]
    with pytest.raises(openai.BadRequestError):
        client(base).chat.completions.create(model="m", messages=messages)
    assert fake_upstream.calls("/v1/chat/completions") == []


def test_flagged_prompt_passes_with_headers(make_proxy):
    base = make_proxy()
    raw = client(base).chat.completions.with_raw_response.create(
        model="m", messages=[{"role": "user", "content": "a FLAGME question"}]
    )
    assert raw.parse().choices[0].message.content == "Hello! How can I help?"
    assert raw.headers["x-guardrail-action"] == "flag"
    assert set(raw.headers["x-guardrail-categories"].split(",")) == {"unsafe", "hate"}


def test_blocked_response_becomes_refusal(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy()
    fake_upstream.script("/v1/chat/completions", chat_reply("Sure: BLOCKME instructions"))
    raw = client(base).chat.completions.with_raw_response.create(model="m", messages=USER)
    assert raw.status_code == 200
    completion = raw.parse()
    choice = completion.choices[0]
    assert choice.finish_reason == "content_filter"
    assert choice.message.content == "Sorry, I can't help with that."  # the policy default
    assert "BLOCKME" not in raw.http_response.text
    assert raw.headers["x-guardrail-action"] == "block"
    extra = raw.http_response.json()["guardrail"]
    assert extra["stage"] == "post_call" and extra["action"] == "block"
    assert completion.usage is not None  # the rest of the upstream body is kept


def test_flagged_response_passes_with_headers(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy()
    fake_upstream.script("/v1/chat/completions", chat_reply("a FLAGME answer"))
    raw = client(base).chat.completions.with_raw_response.create(model="m", messages=USER)
    assert raw.parse().choices[0].message.content == "a FLAGME answer"
    assert raw.headers["x-guardrail-action"] == "flag"
    assert "unsafe" in raw.headers["x-guardrail-categories"]


def test_only_the_blocked_choice_is_replaced(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy()
    fake_upstream.script("/v1/chat/completions", chat_reply("fine answer", "BLOCKME answer"))
    completion = client(base).chat.completions.create(model="m", messages=USER, n=2)
    assert completion.choices[0].message.content == "fine answer"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[1].finish_reason == "content_filter"


def test_response_tool_call_arguments_are_checked(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy()
    fake_upstream.script(
        "/v1/chat/completions",
        chat_reply(None, tool_calls=[{"name": "run", "arguments": '{"cmd": "BLOCKME"}'}]),
        chat_reply(None, tool_calls=[{"name": "run", "arguments": '{"cmd": "ls"}'}]),
    )
    blocked = client(base).chat.completions.create(model="m", messages=USER)
    assert blocked.choices[0].finish_reason == "content_filter"
    assert not blocked.choices[0].message.tool_calls
    passed = client(base).chat.completions.create(model="m", messages=USER)
    assert passed.choices[0].message.tool_calls[0].function.arguments == '{"cmd": "ls"}'


def test_response_is_checked_with_the_prompt_as_context(
    make_proxy, fake: FakeClassifier, fake_upstream: FakeUpstream
):
    base = make_proxy()
    client(base).chat.completions.create(
        model="m",
        messages=[{"role": "system", "content": "sys"}, {"role": "user", "content": "the q"}],
    )
    responses = [s for batch in fake.calls for s in batch if s.role == "response"]
    assert responses[-1].text == "Hello! How can I help?"
    assert responses[-1].context == "the q"


def test_completions_allow_flag_block(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy()
    c = client(base)
    fake_upstream.script(
        "/v1/completions",
        completion_reply("plain text"),
        completion_reply("FLAGME text"),
        completion_reply("BLOCKME text"),
    )
    assert c.completions.create(model="m", prompt="once upon").choices[0].text == "plain text"
    raw = c.completions.with_raw_response.create(model="m", prompt="once")
    assert raw.headers["x-guardrail-action"] == "flag"
    blocked = c.completions.create(model="m", prompt="once")
    assert blocked.choices[0].finish_reason == "content_filter"
    assert blocked.choices[0].text == "Sorry, I can't help with that."
    with pytest.raises(openai.BadRequestError) as info:
        c.completions.create(model="m", prompt=["fine", "BLOCKME"])
    assert info.value.code == "content_filter"
    with pytest.raises(openai.BadRequestError):
        c.completions.create(model="m", prompt="fine", suffix="BLOCKME")
    assert len(fake_upstream.calls("/v1/completions")) == 3


def test_token_id_prompts_are_refused(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy()
    r = httpx.post(f"{base}/completions", json={"model": "m", "prompt": [1, 2, 3]})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "unsupported_content"
    assert fake_upstream.calls("/v1/completions") == []


def test_media_parts_are_refused_unless_allowed(make_proxy, fake_upstream: FakeUpstream):
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "what is it"}, image]}]
    strict = make_proxy()
    r = httpx.post(f"{strict}/chat/completions", json={"model": "m", "messages": messages})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "messages.0.content.1"
    lenient = make_proxy(allow_media=True)
    r = httpx.post(f"{lenient}/chat/completions", json={"model": "m", "messages": messages})
    assert r.status_code == 200
    assert len(fake_upstream.calls("/v1/chat/completions")) == 1


def test_upstream_json_body_is_returned_byte_for_byte_when_allowed(
    make_proxy, fake_upstream: FakeUpstream
):
    base = make_proxy()
    r = httpx.post(f"{base}/chat/completions", json={"model": "m", "messages": USER})
    assert r.status_code == 200
    assert json.loads(r.content)["id"] == "chatcmpl-fake"
    assert "guardrail" not in r.json()
