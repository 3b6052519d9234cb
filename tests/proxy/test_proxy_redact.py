"""Redaction in the proxy: placeholders go upstream, values come back, logs never see them."""

from __future__ import annotations

import json

import httpx
import pytest
from openai import OpenAI

from guardrail import Guard, load_policy
from guardrail.testing import FakeClassifier
from tests.conftest import POLICIES
from tests.fake_upstream import (
    FakeUpstream,
    chat_reply,
    chat_stream,
    completion_reply,
    completion_stream,
    responses_reply,
    responses_stream,
)

CHAT = "/v1/chat/completions"
EMAIL = "jane.doe@example.com"
PROMPT = f"Please answer {EMAIL}; her card is 4111 1111 1111 1111."
SENT = "Please answer <EMAIL_1>; her card is <CREDIT_CARD_1>."


@pytest.fixture
def redact_guard() -> Guard:
    guard = Guard(load_policy(POLICIES / "redact.yaml"), classifier=FakeClassifier())
    # Presidio and spaCy take seconds to import on a busy machine; the proxy's start-up
    # warm-up would count them against the test server's start deadline.
    guard.warm_up()
    return guard


def _client(base: str) -> OpenAI:
    return OpenAI(base_url=base, api_key="k", max_retries=0)


def test_chat_redacted_upstream_restored_for_the_caller(
    make_proxy, redact_guard, fake_upstream: FakeUpstream, tmp_path
):
    audit = tmp_path / "audit.jsonl"
    base = make_proxy(guard=redact_guard, audit_log=str(audit), audit_log_text=True)
    fake_upstream.script(CHAT, chat_reply("Dear <EMAIL_1>, your card <CREDIT_CARD_1> is fine."))
    with _client(base) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="m", messages=[{"role": "user", "content": PROMPT}]
        )
    result = raw.parse()
    assert fake_upstream.calls(CHAT)[-1].body["messages"][0]["content"] == SENT
    # The upstream's answer names no card, the restored one does: the response rules (cards
    # block) apply to what the model wrote, before restoring.
    assert result.choices[0].message.content == (
        f"Dear {EMAIL}, your card 4111 1111 1111 1111 is fine."
    )
    assert raw.headers["x-guardrail-action"] == "redact"
    log = audit.read_text()
    assert EMAIL not in log and "4111" not in log
    first = json.loads(log.splitlines()[0])
    assert first["action"] == "redact"
    assert first["entities"] == {"EMAIL": 1, "CREDIT_CARD": 1}
    assert "<EMAIL>" in first["text"]


def test_chat_stream_restores_split_placeholders(make_proxy, redact_guard, fake_upstream):
    base = make_proxy(guard=redact_guard, stream_check_every=4)
    pieces = ["Dear <EMA", "IL_1>, card <CRED", "IT_CARD_1", "> ok <EMAIL_"]
    fake_upstream.script(CHAT, chat_stream(*pieces))
    with _client(base) as client:
        stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": PROMPT}], stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == f"Dear {EMAIL}, card 4111 1111 1111 1111 ok <EMAIL_"
    assert EMAIL not in str(fake_upstream.calls(CHAT)[-1].body)


def test_completions_and_responses(make_proxy, redact_guard, fake_upstream):
    base = make_proxy(guard=redact_guard)
    fake_upstream.script("/v1/completions", completion_reply("Hi <EMAIL_1>"))
    fake_upstream.script("/v1/completions", completion_stream("Hi <EMA", "IL_1>!"))
    fake_upstream.script("/v1/responses", responses_reply("Hi <EMAIL_1>"))
    with _client(base) as client:
        out = client.completions.create(model="m", prompt=[PROMPT])
        assert out.choices[0].text == f"Hi {EMAIL}"
        assert fake_upstream.calls("/v1/completions")[-1].body["prompt"] == [SENT]
        stream = client.completions.create(model="m", prompt=PROMPT, stream=True)
        assert "".join(c.choices[0].text for c in stream if c.choices) == f"Hi {EMAIL}!"
        resp = client.responses.create(model="m", input=PROMPT)
        assert resp.output_text == f"Hi {EMAIL}"
        assert fake_upstream.calls("/v1/responses")[-1].body["input"] == SENT
        fake_upstream.script("/v1/responses", responses_stream("Hi <EMA", "IL_1>, ok <EMAIL_"))
        events = list(client.responses.create(model="m", input=PROMPT, stream=True))
        deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        assert deltas == f"Hi {EMAIL}, ok <EMAIL_"
        done = next(e for e in events if e.type == "response.output_text.done")
        assert done.text == f"Hi {EMAIL}, ok <EMAIL_"
        assert EMAIL not in str(fake_upstream.calls("/v1/responses")[-1].body)


def test_secret_in_prompt_is_a_400_naming_the_type_not_the_value(
    make_proxy, redact_guard, fake_upstream
):
    base = make_proxy(guard=redact_guard)
    key = "AKIAIOSFODNN7EXAMPLE"
    reply = httpx.post(
        f"{base}/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": f"key {key}"}]},
        headers={"authorization": "Bearer k"},
    )
    assert reply.status_code == 400
    body = reply.json()
    assert body["error"]["code"] == "content_filter"
    assert "entity:AWS_KEY" in body["guardrail"]["verdict"]["decided_by"]
    assert key not in reply.text
    assert fake_upstream.calls(CHAT) == []
