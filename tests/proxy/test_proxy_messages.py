"""``POST /v1/messages``: Anthropic's Messages API through the proxy, with the real client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from tests.fake_upstream import FakeUpstream, messages_reply, messages_stream

REFUSAL = "Sorry, I can't help with that."
USER = [{"role": "user", "content": "tell me"}]


def proxy(make_proxy: Any, fake_upstream: FakeUpstream, **options: Any) -> str:
    """The proxy's root URL (the anthropic client adds /v1/messages itself)."""
    base = make_proxy(anthropic_upstream_url=fake_upstream.base_url, **options)
    return str(base).removesuffix("/v1")


_OPEN: list[anthropic.Anthropic] = []


def client(root: str, key: str = "sk-ant-caller") -> anthropic.Anthropic:
    """A real anthropic client for the proxy (closed after the test by ``close_clients``)."""
    made = anthropic.Anthropic(base_url=root, api_key=key, max_retries=0, timeout=20)
    _OPEN.append(made)
    return made


@pytest.fixture(autouse=True)
def close_clients() -> Iterator[None]:
    """Close every client a test made, so no pooled socket is left for the GC to find."""
    yield
    while _OPEN:
        _OPEN.pop().close()


def raw_stream(root: str, body: dict[str, Any]) -> tuple[bytes, list[tuple[str, dict[str, Any]]]]:
    """The proxy's raw SSE bytes for a streamed request, and its (event, data) pairs."""
    with httpx.stream(
        "POST", f"{root}/v1/messages", json={**body, "stream": True}, timeout=20
    ) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        raw = r.read()
    events = []
    for chunk in raw.decode().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in chunk.splitlines() if ": " in line)
        if "event" in lines:
            events.append((lines["event"], json.loads(lines["data"])))
    return raw, events


def test_allowed_message_passes_untouched(make_proxy, fake_upstream: FakeUpstream):
    root = proxy(make_proxy, fake_upstream)
    message = client(root).messages.create(model="m", max_tokens=50, messages=USER)
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello from Claude!"
    assert message.stop_reason == "end_turn"
    sent = fake_upstream.calls("/v1/messages")[0]
    # pass-through mode: the caller's key and version go upstream; the body is untouched
    # (this client version sends its api_key as a bearer token; older ones as x-api-key)
    assert sent.headers["authorization"] == "Bearer sk-ant-caller"
    assert sent.headers["anthropic-version"] == client(root).default_headers["anthropic-version"]
    assert sent.body["messages"] == USER and sent.body["max_tokens"] == 50
    body = {"model": "m", "max_tokens": 5, "messages": USER}
    httpx.post(f"{root}/v1/messages", json=body, headers={"x-api-key": "sk-ant-raw"})
    sent = fake_upstream.calls("/v1/messages")[1]
    assert sent.headers["x-api-key"] == "sk-ant-raw"
    assert sent.headers["anthropic-version"] == "2023-06-01"  # the default when none is sent
    assert "authorization" not in sent.headers


def test_blocked_prompt_is_an_anthropic_error(make_proxy, fake_upstream: FakeUpstream):
    root = proxy(make_proxy, fake_upstream)
    with pytest.raises(anthropic.BadRequestError) as caught:
        client(root).messages.create(
            model="m", max_tokens=50, messages=[{"role": "user", "content": "BLOCKME now"}]
        )
    body = caught.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["code"] == "content_filter"
    assert body["guardrail"]["action"] == "block" and body["guardrail"]["stage"] == "pre_call"
    assert fake_upstream.calls("/v1/messages") == []


@pytest.mark.parametrize(
    "messages",
    [
        # a tool result
        [
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "t1", "name": "weather", "input": {"city": "x"}}
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "content": [{"type": "text", "text": "BLOCKME"}],
                    }
                ],
            },
        ],
        # an earlier assistant turn's tool call input
        [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "t1", "name": "run", "input": {"c": "BLOCKME"}}
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}],
            },
        ],
    ],
)
def test_tool_calls_and_results_are_checked(make_proxy, fake_upstream, messages):
    root = proxy(make_proxy, fake_upstream)
    with pytest.raises(anthropic.BadRequestError):
        client(root).messages.create(model="m", max_tokens=50, messages=messages)
    assert fake_upstream.calls("/v1/messages") == []


def test_system_prompt_is_checked_and_images_refused(make_proxy, fake_upstream):
    root = proxy(make_proxy, fake_upstream)
    with pytest.raises(anthropic.BadRequestError):
        client(root).messages.create(model="m", max_tokens=50, system="BLOCKME", messages=USER)
    image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "AA=="},
    }
    with pytest.raises(anthropic.BadRequestError) as caught:
        client(root).messages.create(
            model="m", max_tokens=50, messages=[{"role": "user", "content": [image]}]
        )
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["code"] == "unsupported_content"
    assert fake_upstream.calls("/v1/messages") == []


def test_blocked_answer_is_a_refusal_message(make_proxy, fake_upstream: FakeUpstream):
    root = proxy(make_proxy, fake_upstream)
    fake_upstream.script("/v1/messages", messages_reply("Here it is: BLOCKME"))
    message = client(root).messages.create(model="m", max_tokens=50, messages=USER)
    assert [(b.type, getattr(b, "text", None)) for b in message.content] == [("text", REFUSAL)]
    assert message.stop_reason == "refusal"
    assert message.stop_details is not None
    assert "basic" in (message.stop_details.explanation or "")
    r = httpx.post(
        f"{root}/v1/messages",
        json={"model": "m", "max_tokens": 5, "messages": USER},
    )
    # the next (default) reply is fine; the blocked one said why under `guardrail` too
    assert r.status_code == 200 and r.json()["stop_reason"] == "end_turn"


def test_blocked_tool_use_input_is_refused(make_proxy, fake_upstream: FakeUpstream):
    root = proxy(make_proxy, fake_upstream)
    tool = {"name": "shell", "input": {"cmd": "BLOCKME"}}
    fake_upstream.script("/v1/messages", messages_reply("Running it.", tool_use=tool))
    r = httpx.post(f"{root}/v1/messages", json={"model": "m", "max_tokens": 5, "messages": USER})
    body = r.json()
    assert body["stop_reason"] == "refusal" and body["content"] == [
        {"type": "text", "text": REFUSAL}
    ]
    assert body["guardrail"]["action"] == "block" and body["guardrail"]["stage"] == "post_call"
    assert "BLOCKME" not in r.text and "shell" not in r.text


def test_allowed_stream_arrives_whole_with_the_real_client(make_proxy, fake_upstream):
    root = proxy(make_proxy, fake_upstream, stream_check_every=10)
    pieces = ["The sky ", "is blue. ", "Grass is ", "green. ", "Done"]
    fake_upstream.script("/v1/messages", messages_stream(*pieces))
    with client(root).messages.stream(model="m", max_tokens=50, messages=USER) as stream:
        final = stream.get_final_message()
    assert final.content[0].type == "text" and final.content[0].text == "".join(pieces)
    assert final.stop_reason == "end_turn"
    fake_upstream.script("/v1/messages", messages_stream(*pieces))
    _, events = raw_stream(root, {"model": "m", "max_tokens": 50, "messages": USER})
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert all(data["type"] == name for name, data in events)


def test_blocked_stream_sends_no_byte_of_the_blocked_part(make_proxy, fake_upstream):
    root = proxy(make_proxy, fake_upstream, stream_check_every=10)
    pieces = ["Hello there. ", "This is fine. ", "Now BLOCK", "ME secrets. ", "more text. "]
    fake_upstream.script("/v1/messages", messages_stream(*pieces))
    raw, events = raw_stream(root, {"model": "m", "max_tokens": 50, "messages": USER})
    for leaked in (b"BLOCK", b"Now", b"secrets", b"more text"):
        assert leaked not in raw
    texts = [d["delta"]["text"] for n, d in events if n == "content_block_delta"]
    assert "".join(texts) == "Hello there. This is fine. \n\n" + REFUSAL
    delta = next(d for n, d in events if n == "message_delta")
    assert delta["delta"]["stop_reason"] == "refusal"
    assert "basic" in delta["delta"]["stop_details"]["explanation"]
    assert delta["guardrail"]["action"] == "block"
    assert [n for n, _ in events][-2:] == ["message_delta", "message_stop"]
    # the real client assembles the same message
    fake_upstream.script("/v1/messages", messages_stream(*pieces))
    with client(root).messages.stream(model="m", max_tokens=50, messages=USER) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "refusal"
    assert final.content[0].type == "text" and final.content[0].text.endswith(REFUSAL)


def test_streamed_tool_use_is_held_whole_and_checked(make_proxy, fake_upstream):
    root = proxy(make_proxy, fake_upstream, stream_check_every=10)
    ok = {"name": "weather", "input": {"city": "Paris"}}
    fake_upstream.script("/v1/messages", messages_stream("Checking. ", tool_use=ok))
    with client(root).messages.stream(model="m", max_tokens=50, messages=USER) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["text", "tool_use"]
    assert final.content[1].type == "tool_use" and final.content[1].input == {"city": "Paris"}
    bad = {"name": "shell", "input": {"cmd": "rm -rf / BLOCKME"}}
    fake_upstream.script("/v1/messages", messages_stream("Running. ", tool_use=bad))
    raw, events = raw_stream(root, {"model": "m", "max_tokens": 50, "messages": USER})
    assert b"BLOCKME" not in raw and b"shell" not in raw and b'tool_use",' not in raw
    starts = [d["content_block"] for n, d in events if n == "content_block_start"]
    # the held tool_use block is replaced by a text block with the refusal, at its index
    assert starts == [{"type": "text", "text": ""}, {"type": "text", "text": ""}]
    last_text = [d for n, d in events if n == "content_block_delta"][-1]
    assert last_text["index"] == 1 and last_text["delta"]["text"] == REFUSAL


def test_cut_stream_ends_with_an_error_the_client_raises(make_proxy, fake_upstream):
    root = proxy(make_proxy, fake_upstream, stream_check_every=1000)
    fake_upstream.script("/v1/messages", messages_stream("Partial answer. ", "more", cut_after=5))
    _, events = raw_stream(root, {"model": "m", "max_tokens": 50, "messages": USER})
    assert events[-1][0] == "error" and events[-1][1]["type"] == "error"
    # the text held when the stream broke off was checked and released
    texts = [d["delta"]["text"] for n, d in events if n == "content_block_delta"]
    assert "".join(texts) == "Partial answer. more"
    fake_upstream.script("/v1/messages", messages_stream("Partial answer. ", "more", cut_after=5))
    with (
        pytest.raises(anthropic.APIStatusError),
        client(root).messages.stream(model="m", max_tokens=50, messages=USER) as stream,
    ):
        stream.get_final_message()


def test_proxy_keys_and_the_anthropic_upstream_key(make_proxy, fake_upstream: FakeUpstream):
    from guardrail.adapters.proxy.settings import hash_key

    upstream_key = "sk-ant-upstream-SECRET-42"
    root = proxy(
        make_proxy,
        fake_upstream,
        keys=[{"name": "team-claude", "sha256": hash_key("proxy-key-1"), "models": ["claude-x"]}],
        anthropic_upstream_api_key=upstream_key,
    )
    with client(root, "wrong") as wrong, pytest.raises(anthropic.AuthenticationError):
        wrong.messages.create(model="claude-x", max_tokens=5, messages=USER)
    with client(root, "proxy-key-1") as team:
        with pytest.raises(anthropic.PermissionDeniedError):
            team.messages.create(model="other", max_tokens=5, messages=USER)
        message = team.messages.create(model="claude-x", max_tokens=5, messages=USER)
    assert message.content[0].type == "text"
    sent = fake_upstream.calls("/v1/messages")
    assert len(sent) == 1 and sent[0].headers["x-api-key"] == upstream_key
    assert "authorization" not in sent[0].headers
    assert "proxy-key-1" not in json.dumps(sent[0].headers)


def test_upstream_errors_come_back_with_the_key_scrubbed(make_proxy, fake_upstream):
    from tests.fake_upstream import Reply

    upstream_key = "sk-ant-upstream-SECRET-42"
    root = proxy(
        make_proxy,
        fake_upstream,
        api_keys="k",
        anthropic_upstream_api_key=upstream_key,
    )
    error = {
        "type": "error",
        "error": {"type": "overloaded_error", "message": f"bad {upstream_key}"},
    }
    fake_upstream.script("/v1/messages", Reply(error, status=529))
    r = httpx.post(
        f"{root}/v1/messages",
        json={"model": "m", "max_tokens": 5, "messages": USER},
        headers={"x-api-key": "k"},
    )
    assert r.status_code == 529 and upstream_key not in r.text
    assert r.json()["error"]["type"] == "overloaded_error"


def test_a_prompt_the_policy_redacts_is_refused_not_forwarded(make_proxy, fake_upstream):
    """/v1/messages cannot rewrite bodies yet: a redact verdict fails closed (nothing is sent)."""
    from guardrail import Guard, load_policy
    from guardrail.testing import FakeClassifier
    from tests.conftest import POLICIES

    guard = Guard(load_policy(POLICIES / "redact.yaml"), classifier=FakeClassifier())
    guard.warm_up()
    root = proxy(make_proxy, fake_upstream, guard=guard)
    email = "jane.doe@example.com"
    with pytest.raises(anthropic.BadRequestError) as caught:
        client(root).messages.create(
            model="m", max_tokens=50, messages=[{"role": "user", "content": f"Mail {email}"}]
        )
    body = caught.value.body
    assert isinstance(body, dict) and body["error"]["code"] == "content_filter"
    assert "EMAIL" in body["error"]["message"] and email not in json.dumps(body)
    assert body["guardrail"]["action"] == "redact"
    assert fake_upstream.calls("/v1/messages") == []
