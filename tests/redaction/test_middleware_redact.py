"""Redaction through guard.wrap() and @guard.protect: placeholders out, values back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openai import AsyncOpenAI, OpenAI

from guardrail import Action, Guard
from tests.fake_upstream import (
    FakeUpstream,
    chat_reply,
    chat_stream,
    completion_reply,
    completion_stream,
    responses_reply,
    responses_stream,
)
from tests.redaction.conftest import AWS

CHAT = "/v1/chat/completions"
EMAIL = "jane.doe@example.com"
PROMPT = f"Draft a reply to {EMAIL} and cc bob@example.org about the invoice."


@pytest.fixture
def client(fake_upstream: FakeUpstream) -> Iterator[OpenAI]:
    c = OpenAI(base_url=fake_upstream.base_url, api_key="sk-test", max_retries=0)
    yield c
    c.close()


def _sent(fake_upstream: FakeUpstream, path: str) -> str:
    return str(fake_upstream.calls(path)[-1].body)


def test_chat_prompt_is_redacted_and_answer_restored(redact_guard: Guard, client, fake_upstream):
    fake_upstream.script(CHAT, chat_reply("Dear <EMAIL_1>, thanks. Copying <EMAIL_2>."))
    guarded = redact_guard.wrap(client)
    messages = [
        {"role": "system", "content": "You write e-mails."},
        {"role": "user", "content": PROMPT},
    ]
    result = guarded.chat.completions.create(model="m", messages=messages)
    sent = fake_upstream.calls(CHAT)[-1].body["messages"]
    assert sent[1]["content"] == ("Draft a reply to <EMAIL_1> and cc <EMAIL_2> about the invoice.")
    assert EMAIL not in _sent(fake_upstream, CHAT)
    assert messages[1]["content"] == PROMPT  # the caller's list is not changed
    assert result.choices[0].message.content == f"Dear {EMAIL}, thanks. Copying bob@example.org."
    assert result.guardrail.prompt.action is Action.REDACT


def test_chat_stream_restores_placeholders_split_across_chunks(
    redact_guard: Guard, client, fake_upstream
):
    pieces = ["Dear <EMA", "IL_1>, thanks", ". Copying <", "EMAIL_2", ">. Bye <EMAIL_"]
    fake_upstream.script(CHAT, chat_stream(*pieces))
    guarded = redact_guard.wrap(client, check_every=5)
    stream = guarded.chat.completions.create(
        model="m", messages=[{"role": "user", "content": PROMPT}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == f"Dear {EMAIL}, thanks. Copying bob@example.org. Bye <EMAIL_"
    assert EMAIL not in _sent(fake_upstream, CHAT)


def test_completions_and_responses_are_redacted_and_restored(
    redact_guard: Guard, client, fake_upstream
):
    guarded = redact_guard.wrap(client)
    fake_upstream.script("/v1/completions", completion_reply("Hi <EMAIL_1>!"))
    out = guarded.completions.create(model="m", prompt=PROMPT)
    assert fake_upstream.calls("/v1/completions")[-1].body["prompt"].count("<EMAIL_") == 2
    assert out.choices[0].text == f"Hi {EMAIL}!"

    fake_upstream.script("/v1/completions", completion_stream("Hi <EM", "AIL_1>!"))
    stream = guarded.completions.create(model="m", prompt=PROMPT, stream=True)
    assert "".join(c.choices[0].text for c in stream if c.choices) == f"Hi {EMAIL}!"

    fake_upstream.script("/v1/responses", responses_reply("Sent to <EMAIL_1>."))
    resp = guarded.responses.create(model="m", input=PROMPT, instructions=f"Sign as {EMAIL}")
    body = fake_upstream.calls("/v1/responses")[-1].body
    assert EMAIL not in str(body)
    assert body["instructions"] == "Sign as <EMAIL_1>"
    assert resp.output_text == f"Sent to {EMAIL}."

    fake_upstream.script("/v1/responses", responses_stream("Sent to <EMAIL", "_1> ok"))
    events = list(guarded.responses.create(model="m", input=PROMPT, stream=True))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == f"Sent to {EMAIL} ok"
    done = next(e for e in events if e.type == "response.output_text.done")
    assert done.text == f"Sent to {EMAIL} ok"


def test_secret_blocks_before_any_call(redact_guard: Guard, client, fake_upstream):
    guarded = redact_guard.wrap(client, on_block="refuse")
    out = guarded.chat.completions.create(
        model="m", messages=[{"role": "user", "content": f"my key {AWS}"}]
    )
    assert out.choices[0].finish_reason == "content_filter"
    assert fake_upstream.calls(CHAT) == []


async def test_async_chat_is_redacted_and_restored(redact_guard: Guard, fake_upstream):
    client = AsyncOpenAI(base_url=fake_upstream.base_url, api_key="sk-test", max_retries=0)
    try:
        guarded = redact_guard.wrap(client)
        fake_upstream.script(CHAT, chat_stream("Hello <EMAIL", "_1>."))
        stream = await guarded.chat.completions.create(
            model="m", messages=[{"role": "user", "content": PROMPT}], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert text == f"Hello {EMAIL}."
        assert EMAIL not in _sent(fake_upstream, CHAT)
    finally:
        await client.close()


def test_protect_redacts_the_prompt_argument_and_restores_the_answer(redact_guard: Guard):
    seen: list[str] = []

    @redact_guard.protect
    def answer(prompt: str, tone: str = "warm") -> str:
        seen.append(prompt)
        return f"({tone}) Writing to <EMAIL_1>."

    assert answer(PROMPT, tone="dry") == f"(dry) Writing to {EMAIL}."
    assert seen == ["Draft a reply to <EMAIL_1> and cc <EMAIL_2> about the invoice."]

    @redact_guard.protect
    def stream(prompt: str) -> Iterator[str]:
        seen.append(prompt)
        yield from ["To <EMAI", "L_2>: hi", " <EMAIL_1>"]

    assert "".join(stream(PROMPT)) == f"To bob@example.org: hi {EMAIL}"


async def test_protect_async_generator(redact_guard: Guard):
    @redact_guard.protect
    async def stream(prompt: str):
        assert EMAIL not in prompt
        for piece in ["Hi <EMA", "IL_1>"]:
            yield piece

    assert "".join([p async for p in stream(PROMPT)]) == f"Hi {EMAIL}"
