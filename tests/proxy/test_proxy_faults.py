"""Upstream faults (refused, slow, 500, a stream cut mid-way) and classifier faults."""

from __future__ import annotations

import httpx
import openai
import pytest

from guardrail import ClassifierError, Guard, Sample, ScoreSet, load_policy
from guardrail.policy import OnError
from guardrail.testing import FakeClassifier
from tests.conftest import POLICIES
from tests.fake_upstream import (
    FakeUpstream,
    Reply,
    chat_reply,
    chat_stream,
    error_reply,
)
from tests.proxy.conftest import closed_port

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key="sk-caller", max_retries=0, timeout=20)


def test_refused_connection_is_502(make_proxy):
    base = make_proxy(upstream_url=f"http://127.0.0.1:{closed_port()}/v1")
    for stream in (False, True):
        r = httpx.post(f"{base}/chat/completions", json={**BODY, "stream": stream})
        assert r.status_code == 502
        assert r.json()["error"]["code"] == "upstream_unreachable"
        assert r.json()["error"]["type"] == "upstream_error"
    assert httpx.get(f"{base}/models").status_code == 502
    metrics = httpx.get(base.removesuffix("/v1") + "/metrics").text
    assert (
        'guardrail_proxy_upstream_errors_total{kind="connect",route="/v1/chat/completions"} 2.0'
        in metrics
    )


def test_slow_upstream_is_504(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy(upstream_timeout_s=0.3)
    fake_upstream.script("/v1/chat/completions", chat_reply("late", delay_s=1.5))
    r = httpx.post(f"{base}/chat/completions", json=BODY, timeout=10)
    assert r.status_code == 504
    assert r.json()["error"]["code"] == "upstream_timeout"
    fake_upstream.script("/v1/chat/completions", chat_stream("late", delay_s=1.5))
    r = httpx.post(f"{base}/chat/completions", json={**BODY, "stream": True}, timeout=10)
    assert r.status_code == 504


def test_slow_but_in_time_upstream_passes(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy(upstream_timeout_s=5)
    fake_upstream.script("/v1/chat/completions", chat_reply("worth the wait", delay_s=0.3))
    assert client(base).chat.completions.create(**BODY).choices[0].message.content == (
        "worth the wait"
    )


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_errors_come_back_with_status_and_body(
    make_proxy, fake_upstream: FakeUpstream, stream: bool
):
    base = make_proxy()
    fake_upstream.script(
        "/v1/chat/completions",
        error_reply(500, "upstream exploded", type="server_error"),
        error_reply(429, "slow down", type="rate_limit_error", headers={"retry-after": "3"}),
    )
    r = httpx.post(f"{base}/chat/completions", json={**BODY, "stream": stream})
    assert r.status_code == 500
    assert r.json()["error"]["message"] == "upstream exploded"
    r = httpx.post(f"{base}/chat/completions", json={**BODY, "stream": stream})
    assert r.status_code == 429 and r.headers["retry-after"] == "3"
    assert r.json()["error"]["type"] == "rate_limit_error"


def test_upstream_non_json_success_is_502(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy()
    fake_upstream.script("/v1/chat/completions", Reply("not an object"), Reply({"no": "choices"}))
    assert httpx.post(f"{base}/chat/completions", json=BODY).status_code == 502
    assert httpx.post(f"{base}/chat/completions", json=BODY).status_code == 502


def test_stream_cut_mid_way_ends_with_an_error_event(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy(stream_check_every=5)
    reply = chat_stream("Hello there. ", "This is fine. ", "never sent", cut_after=3)
    fake_upstream.script("/v1/chat/completions", reply)
    received = []
    with pytest.raises(openai.APIError, match="ended unexpectedly"):
        for chunk in client(base).chat.completions.create(**BODY, stream=True):
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "Hello there. This is fine. "
    metrics = httpx.get(base.removesuffix("/v1") + "/metrics").text
    assert 'kind="stream_cut"' in metrics


def test_stream_cut_holds_back_unsafe_tail(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy(stream_check_every=1000)
    reply = chat_stream("Fine start. ", "then BLOCKME", "never sent", cut_after=3)
    fake_upstream.script("/v1/chat/completions", reply)
    with httpx.stream("POST", f"{base}/chat/completions", json={**BODY, "stream": True}) as r:
        body = r.read().decode()
    assert "BLOCKME" not in body
    assert '"content_filter"' in body
    assert '"error"' in body and "[DONE]" not in body


def _failing_guard(on_error: OnError, **fake_options: object) -> Guard:
    policy = load_policy(POLICIES / "basic.yaml").replace(on_error=on_error, timeout_s=0.2)
    return Guard(policy, classifier=FakeClassifier(**fake_options))


@pytest.mark.parametrize("fault", [{"error": "model crashed"}, {"delay_s": 1.0}])
def test_fail_closed_blocks_when_the_classifier_fails(make_proxy, fake_upstream, fault):
    base = make_proxy(guard=_failing_guard(OnError.BLOCK, **fault))
    r = httpx.post(f"{base}/chat/completions", json=BODY)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "content_filter"
    assert "error" in r.json()["guardrail"]["verdict"]["decided_by"]
    assert fake_upstream.requests == []


@pytest.mark.parametrize("fault", [{"error": "model crashed"}, {"delay_s": 1.0}])
def test_fail_open_allows_when_the_classifier_fails(make_proxy, fake_upstream, fault):
    base = make_proxy(guard=_failing_guard(OnError.ALLOW, **fault))
    r = httpx.post(f"{base}/chat/completions", json=BODY)
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"] == "Hello! How can I help?"


def test_settings_on_error_overrides_the_policy(make_proxy, fake_upstream):
    base = make_proxy(guard=_failing_guard(OnError.ALLOW, error="down"), on_error="block")
    assert httpx.post(f"{base}/chat/completions", json=BODY).status_code == 400


def test_fail_closed_mid_stream_ends_the_stream(make_proxy, fake_upstream):
    calls = {"n": 0}

    def flaky(sample: Sample) -> ScoreSet:
        # the startup warm-up and the prompt check pass; then the classifier starts failing
        calls["n"] += 1
        if calls["n"] > 2:
            raise ClassifierError("classifier went away")
        return ScoreSet(unsafe=0.0, classifier="fake")

    policy = load_policy(POLICIES / "basic.yaml").replace(on_error="block")
    base = make_proxy(
        guard=Guard(policy, classifier=FakeClassifier(fn=flaky)), stream_check_every=5
    )
    fake_upstream.script("/v1/chat/completions", chat_stream("One. ", "Two. ", "Three. "))
    chunks = list(client(base).chat.completions.create(**BODY, stream=True))
    assert chunks[-1].choices[0].finish_reason == "content_filter"
    assert "One." not in "".join(c.choices[0].delta.content or "" for c in chunks[:-1])
    assert calls["n"] >= 3
