"""guard.wrap(AsyncOpenAI()): the same semantics on the async client."""

from __future__ import annotations

import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from guardrail import Action, ContentBlocked
from tests.fake_upstream import chat_reply, chat_stream, error_reply, responses_reply
from tests.middleware.conftest import BLOCK, FLAG, user

CHAT = "/v1/chat/completions"


async def test_allow_flag_and_hooks(guard, async_openai_client, fake_upstream, seen):
    client = guard.wrap(async_openai_client, on_verdict=seen)
    fake_upstream.script(CHAT, chat_reply(f"fine {FLAG}"))
    reply = await client.chat.completions.create(model="m", messages=user("hi"))
    assert type(reply) is ChatCompletion
    assert reply.guardrail.action is Action.FLAG
    assert seen == [("allow", "pre_call"), ("flag", "post_call")]


async def test_blocks_on_each_side_in_both_modes(guard, async_openai_client, fake_upstream):
    client = guard.wrap(async_openai_client)
    with pytest.raises(ContentBlocked) as info:
        await client.chat.completions.create(model="m", messages=user(BLOCK))
    assert info.value.stage == "pre_call" and fake_upstream.requests == []
    fake_upstream.script(CHAT, chat_reply(BLOCK), chat_reply(BLOCK))
    with pytest.raises(ContentBlocked) as info:
        await client.chat.completions.create(model="m", messages=user("hi"))
    assert info.value.stage == "post_call"
    refusing = guard.wrap(async_openai_client, on_block="refuse")
    reply = await refusing.chat.completions.create(model="m", messages=user("hi"))
    assert reply.choices[0].finish_reason == "content_filter"
    assert reply.choices[0].message.content == guard.policy.refusal_message
    reply = await refusing.chat.completions.create(model="m", messages=user(BLOCK))
    assert reply.guardrail.prompt.blocked and len(fake_upstream.requests) == 2


async def test_stream_block_in_the_middle(guard, async_openai_client, fake_upstream):
    client = guard.wrap(async_openai_client, check_every=6)
    pieces = ["Calm words. ", "More calm. ", f"Then {BLOCK} ", "appears. ", "End."]
    fake_upstream.script(CHAT, chat_stream(*pieces))
    stream = await client.chat.completions.create(model="m", messages=user("hi"), stream=True)
    assert isinstance(stream, openai.AsyncStream)
    chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "Calm words. More calm. "
    assert all(type(c) is ChatCompletionChunk for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "content_filter"
    assert stream.guardrail.blocked


async def test_refused_stream_and_upstream_errors(guard, async_openai_client, fake_upstream):
    refusing = guard.wrap(async_openai_client, on_block="refuse")
    stream = await refusing.chat.completions.create(model="m", messages=user(BLOCK), stream=True)
    async with stream:
        chunks = [c async for c in stream]
    assert chunks[-1].choices[0].finish_reason == "content_filter"
    fake_upstream.script(CHAT, error_reply(500, "boom", type="server_error"))
    with pytest.raises(openai.InternalServerError) as info:
        await refusing.chat.completions.create(model="m", messages=user("hi"))
    assert info.value.status_code == 500


async def test_async_responses_api(guard, async_openai_client, fake_upstream):
    client = guard.wrap(async_openai_client, on_block="refuse")
    fake_upstream.script("/v1/responses", responses_reply(f"bad {BLOCK}"))
    reply = await client.responses.create(model="m", input="hi")
    assert reply.output_text == guard.policy.refusal_message
    assert reply.incomplete_details.reason == "content_filter"


async def test_async_context_manager(guard, fake_upstream):
    async with guard.wrap(
        openai.AsyncOpenAI(base_url=fake_upstream.base_url, api_key="k", max_retries=0)
    ) as client:
        models = await client.models.list()
        assert [m.id async for m in models] == ["fake-model"]
