"""Streamed chat and completions through guard.wrap: hold-back, no leak, same chunk types."""

from __future__ import annotations

import json

import openai
import pytest
from openai.types import Completion
from openai.types.chat import ChatCompletionChunk

from guardrail import Action, ContentBlocked
from tests.fake_upstream import chat_stream, completion_stream
from tests.middleware.conftest import BLOCK, FLAG, user

CHAT = "/v1/chat/completions"
SAFE = ["The sky ", "is blue. ", "Grass is ", "green. ", "Water is ", "wet. "]
BAD = ["Now the ", f"secret {BLOCK} ", "recipe: ", "mix A ", "and B. ", "Done."]


def _texts(chunks: list[ChatCompletionChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_clean_stream_yields_everything_as_chunks(guard, openai_client, fake_upstream, seen):
    client = guard.wrap(openai_client, check_every=10, on_verdict=seen)
    fake_upstream.script(CHAT, chat_stream(*SAFE))
    stream = client.chat.completions.create(model="m", messages=user("colours?"), stream=True)
    assert isinstance(stream, openai.Stream)
    chunks = list(stream)
    assert all(type(c) is ChatCompletionChunk for c in chunks)
    assert _texts(chunks) == "".join(SAFE)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert stream.guardrail.action is Action.ALLOW
    stages = {stage for _, stage in seen}
    assert stages == {"pre_call", "stream_chunk", "post_call"}


def test_block_in_the_middle_yields_none_of_the_blocked_text(
    guard, classifier, openai_client, fake_upstream
):
    client = guard.wrap(openai_client, check_every=8)
    fake_upstream.script(CHAT, chat_stream(*SAFE, *BAD))
    stream = client.chat.completions.create(model="m", messages=user("tell me"), stream=True)
    chunks = list(stream)
    text = _texts(chunks)
    dumped = "".join(c.model_dump_json() for c in chunks)
    assert BLOCK not in dumped
    for piece in BAD[1:]:
        assert piece.strip() not in text
    assert "".join(SAFE).startswith(text) and text  # what went out is a clean prefix
    assert chunks[-1].choices[0].finish_reason == "content_filter"
    assert sum(1 for c in chunks if c.choices[0].finish_reason) == 1
    assert stream.guardrail.blocked
    # The classifier ran at intervals, not per token.
    total = len("".join(SAFE + BAD))
    assert len(classifier.calls) <= 1 + (total // 8) + 1


def test_flagged_stream_continues(guard, openai_client, fake_upstream):
    client = guard.wrap(openai_client, check_every=5)
    fake_upstream.script(CHAT, chat_stream("One ", f"{FLAG} ", "two."))
    stream = client.chat.completions.create(model="m", messages=user("hi"), stream=True)
    assert _texts(list(stream)) == f"One {FLAG} two."
    assert stream.guardrail.flagged


def test_blocked_prompt_on_a_stream(guard, openai_client, fake_upstream):
    client = guard.wrap(openai_client)
    with pytest.raises(ContentBlocked):
        client.chat.completions.create(model="m", messages=user(BLOCK), stream=True)
    refusing = guard.wrap(openai_client, on_block="refuse")
    stream = refusing.chat.completions.create(model="m", messages=user(BLOCK), stream=True)
    with stream:
        chunks = list(stream)
    assert _texts(chunks) == guard.policy.refusal_message
    assert chunks[-1].choices[0].finish_reason == "content_filter"
    assert fake_upstream.requests == []


def test_n_choices_are_moderated_separately(guard, openai_client, fake_upstream):
    client = guard.wrap(openai_client, check_every=5)
    choices = [["Fine one. ", "Still fine."], [f"Bad {BLOCK} one. ", "More bad."]]
    fake_upstream.script(CHAT, chat_stream(choices=choices))
    stream = client.chat.completions.create(model="m", messages=user("hi"), n=2, stream=True)
    chunks = list(stream)
    by_choice: dict[int, str] = {0: "", 1: ""}
    finish: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            by_choice[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                finish[choice.index] = choice.finish_reason
    assert by_choice == {0: "Fine one. Still fine.", 1: ""}
    assert finish == {0: "stop", 1: "content_filter"}


def test_streamed_tool_call_arguments_are_checked(guard, openai_client, fake_upstream):
    client = guard.wrap(openai_client)
    bad_call = {"name": "shell", "arguments": json.dumps({"cmd": f"{BLOCK} now"})}
    fake_upstream.script(CHAT, chat_stream(tool_calls=[bad_call]))
    chunks = list(client.chat.completions.create(model="m", messages=user("x"), stream=True))
    assert not any(c.choices[0].delta.tool_calls for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "content_filter"
    good_call = {"name": "weather", "arguments": json.dumps({"city": "Oslo"})}
    fake_upstream.script(CHAT, chat_stream("Checking. ", tool_calls=[good_call]))
    chunks = list(client.chat.completions.create(model="m", messages=user("x"), stream=True))
    args = "".join(
        tc.function.arguments or "" for c in chunks for tc in c.choices[0].delta.tool_calls or ()
    )
    assert args == good_call["arguments"]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_a_cut_stream_raises_the_upstream_error_and_releases_nothing_unchecked(
    guard, openai_client, fake_upstream
):
    client = guard.wrap(openai_client)  # 200 characters per check: all of it is still held
    fake_upstream.script(CHAT, chat_stream("Hello ", "there ", "friend", cut_after=3))
    stream = client.chat.completions.create(model="m", messages=user("hi"), stream=True)
    received = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            received.append(chunk)
    assert _texts(received) == ""


def test_usage_chunks_pass_and_early_close_works(guard, openai_client, fake_upstream):
    client = guard.wrap(openai_client, check_every=1)
    fake_upstream.script(CHAT, chat_stream("A. ", "B. ", "C."))
    stream = client.chat.completions.create(model="m", messages=user("hi"), stream=True)
    first = next(iter(stream))
    assert first.choices[0].delta.role == "assistant"
    stream.close()


def test_completions_stream_and_block(guard, openai_client, fake_upstream):
    client = guard.wrap(openai_client, check_every=4)
    fake_upstream.script("/v1/completions", completion_stream("Once ", "upon ", "a time."))
    stream = client.completions.create(model="m", prompt="Start:", stream=True)
    chunks = list(stream)
    assert all(type(c) is Completion for c in chunks)
    assert "".join(c.choices[0].text for c in chunks) == "Once upon a time."
    fake_upstream.script("/v1/completions", completion_stream("Fine. ", f"{BLOCK} ", "x"))
    chunks = list(client.completions.create(model="m", prompt="Start:", stream=True))
    assert BLOCK not in "".join(c.choices[0].text for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "content_filter"
