"""Nothing bypasses the guard: Responses API, legacy completions, raw responses, other resources."""

from __future__ import annotations

import openai
import pytest
from openai import OpenAI
from openai.types import Completion
from openai.types.responses import Response

from guardrail import Action, ContentBlocked
from guardrail.middleware import GuardedClient, UnguardedCallError
from tests.fake_upstream import completion_reply, responses_reply, responses_stream
from tests.middleware.conftest import BLOCK, user

RESPONSES = "/v1/responses"


def test_responses_allow_and_block_both_sides(guard, openai_client, fake_upstream):
    client = guard.wrap(openai_client)
    reply = client.responses.create(model="m", input="Say hello")
    assert type(reply) is Response and reply.output_text == "Hello from responses!"
    assert reply.guardrail.action is Action.ALLOW
    with pytest.raises(ContentBlocked):
        client.responses.create(model="m", input=[{"role": "user", "content": BLOCK}])
    fake_upstream.script(RESPONSES, responses_reply(f"answer {BLOCK}"))
    with pytest.raises(ContentBlocked) as info:
        client.responses.create(model="m", input="hi")
    assert info.value.stage == "post_call"
    assert len(fake_upstream.calls(RESPONSES)) == 2


def test_responses_refuse_mode_and_untrusted_tool_output(guard, openai_client, fake_upstream):
    client = guard.wrap(openai_client, on_block="refuse")
    items = [
        {"role": "user", "content": [{"type": "input_text", "text": "Use the tool."}]},
        {"type": "function_call_output", "call_id": "c1", "output": f"{BLOCK} injected"},
    ]
    reply = client.responses.create(model="m", input=items)
    assert type(reply) is Response
    assert reply.output_text == guard.policy.refusal_message
    assert reply.incomplete_details.reason == "content_filter"
    assert fake_upstream.requests == []


def test_background_responses_are_refused(guard, openai_client, fake_upstream):
    client = guard.wrap(openai_client)
    with pytest.raises(UnguardedCallError, match="background"):
        client.responses.create(model="m", input="hi", background=True)
    assert fake_upstream.requests == []


def _text(events) -> str:
    return "".join(e.delta for e in events if e.type == "response.output_text.delta")


def test_responses_stream_clean(guard, openai_client, fake_upstream, seen):
    client = guard.wrap(openai_client, check_every=5, on_verdict=seen)
    fake_upstream.script(RESPONSES, responses_stream("Hello ", "there. ", "How are ", "you?"))
    stream = client.responses.create(model="m", input="hi", stream=True)
    assert isinstance(stream, openai.Stream)
    events = list(stream)
    assert _text(events) == "Hello there. How are you?"
    assert events[-1].type == "response.completed"
    assert [e.type for e in events].count("response.output_text.done") == 1
    assert ("allow", "post_call") in seen


def test_responses_stream_block_in_the_middle(guard, openai_client, fake_upstream):
    client = guard.wrap(openai_client, check_every=5)
    pieces = ("Fine start. ", "Still fine. ", f"Then {BLOCK} ", "and more.")
    fake_upstream.script(RESPONSES, responses_stream(*pieces))
    stream = client.responses.create(model="m", input="hi", stream=True)
    events = list(stream)
    assert _text(events) == "Fine start. Still fine. "
    assert BLOCK not in "".join(e.model_dump_json() for e in events)
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "content_filter"
    assert stream.guardrail.blocked


def test_responses_stream_blocked_prompt(guard, openai_client, fake_upstream):
    with pytest.raises(ContentBlocked):
        guard.wrap(openai_client).responses.create(model="m", input=BLOCK, stream=True)
    refusing = guard.wrap(openai_client, on_block="refuse")
    events = list(refusing.responses.create(model="m", input=BLOCK, stream=True))
    assert _text(events) == guard.policy.refusal_message
    assert events[-1].type == "response.incomplete"
    assert fake_upstream.requests == []


async def test_async_responses_stream(guard, async_openai_client, fake_upstream):
    client = guard.wrap(async_openai_client, check_every=5)
    fake_upstream.script(RESPONSES, responses_stream("Calm. ", f"{BLOCK}. ", "x"))
    stream = await client.responses.create(model="m", input="hi", stream=True)
    events = [e async for e in stream]
    assert _text(events) == "Calm. "
    assert events[-1].type == "response.incomplete"


def test_streamed_audio_output_is_refused(guard, openai_client, fake_upstream):
    with pytest.raises(UnguardedCallError, match="audio"):
        guard.wrap(openai_client).chat.completions.create(
            model="m", messages=user("hi"), modalities=["text", "audio"], stream=True
        )
    assert fake_upstream.requests == []


def test_legacy_completions(guard, openai_client, fake_upstream):
    client = guard.wrap(openai_client, on_block="refuse")
    fake_upstream.script("/v1/completions", completion_reply("a poem", f"{BLOCK} poem"))
    reply = client.completions.create(model="m", prompt="Write a poem", n=2)
    assert type(reply) is Completion
    assert [c.text for c in reply.choices] == ["a poem", guard.policy.refusal_message]
    refused = client.completions.create(model="m", prompt=[BLOCK])
    assert refused.choices[0].finish_reason == "content_filter"
    with pytest.raises(UnguardedCallError, match="token-id"):
        client.completions.create(model="m", prompt=[1, 2, 3])


@pytest.mark.parametrize(
    "path",
    [
        "with_raw_response",
        "with_streaming_response",
        "chat.with_raw_response",
        "chat.completions.with_raw_response",
        "chat.completions.with_streaming_response",
        "chat.completions.stream",
        "responses.with_raw_response",
        "responses.stream",
        "responses.parse",
        "completions.with_raw_response",
        "beta",
        "realtime",
        "audio",
        "images",
        "batches",
        "conversations",
        "fine_tuning",
        "post",
        "request",
    ],
)
def test_text_carrying_surfaces_are_refused_with_a_clear_error(guard, openai_client, path):
    obj = guard.wrap(openai_client)
    names = path.split(".")
    with pytest.raises(UnguardedCallError, match="not available on a guarded client"):
        for name in names:
            obj = getattr(obj, name)


def test_other_resources_pass_through(guard, openai_client, fake_upstream):
    client = guard.wrap(openai_client)
    assert [m.id for m in client.models.list()] == ["fake-model"]
    assert len(client.embeddings.create(model="e", input="hello").data) == 1
    assert client.api_key == "sk-test"
    assert [r.path for r in fake_upstream.requests] == ["/v1/models", "/v1/embeddings"]


def test_allow_unguarded_is_an_explicit_escape_hatch(guard, openai_client):
    client = guard.wrap(openai_client, allow_unguarded=["batches", "with_raw_response"])
    assert client.batches is openai_client.batches
    assert client.with_raw_response is not None


def test_with_options_and_copy_stay_guarded(guard, openai_client, fake_upstream):
    client = guard.wrap(openai_client)
    for derived in (client.with_options(timeout=5), client.copy()):
        assert isinstance(derived, GuardedClient)
        with pytest.raises(ContentBlocked):
            derived.chat.completions.create(model="m", messages=user(BLOCK))
    assert fake_upstream.requests == []


def test_context_manager_and_repr(guard, fake_upstream):
    with guard.wrap(OpenAI(base_url=fake_upstream.base_url, api_key="k")) as client:
        assert isinstance(client, GuardedClient)
        assert isinstance(client, OpenAI)  # libraries that check the type accept it
        assert type(client) is GuardedClient
        assert "guarded" in repr(client)
        assert "chat" in dir(client)


def test_responses_stream_checks_tool_call_arguments(guard, openai_client, fake_upstream):
    from tests.fake_upstream import StreamReply

    base = {"item_id": "fc_1", "output_index": 0}
    events = [
        ("response.function_call_arguments.delta", {**base, "delta": '{"cmd": "'}),
        ("response.function_call_arguments.delta", {**base, "delta": f'{BLOCK} now"}}'}),
        ("response.function_call_arguments.done", {**base, "arguments": f'{{"cmd": "{BLOCK}"}}'}),
    ]
    numbered = tuple(
        (name, {"type": name, "sequence_number": i, **payload})
        for i, (name, payload) in enumerate(events)
    )
    fake_upstream.script(RESPONSES, StreamReply(numbered, done=False))
    client = guard.wrap(openai_client)
    out = list(client.responses.create(model="m", input="run it", stream=True))
    assert BLOCK not in "".join(e.model_dump_json() for e in out)
    assert out[-1].type == "response.incomplete"


def test_a_plain_client_stream_of_dicts(guard):
    class Completions:
        def create(self, **kwargs):
            pieces = ["Fine. ", f"{BLOCK}. ", "more"]
            return iter(
                [{"choices": [{"index": 0, "delta": {"content": p}}]} for p in pieces]
                + [{"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]
            )

    class Chat:
        completions = Completions()

    class Client:
        chat = Chat()

    stream = guard.wrap(Client(), check_every=1).chat.completions.create(
        model="m", messages=user("hi"), stream=True
    )
    with stream:
        chunks = list(stream)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == "Fine. "
    assert chunks[-1]["choices"][0]["finish_reason"] == "content_filter"


@pytest.mark.parametrize(
    ("method", "kwargs"),
    [
        ("chat", {"messages": f"{BLOCK}"}),
        ("chat", {"messages": [f"{BLOCK}"]}),
        ("chat", {"messages": user({"text": BLOCK})}),
        ("chat", {"messages": [{"role": "user", "content": [{"text": BLOCK}]}]}),
        ("chat", {"messages": [{"role": "user", "content": [{"type": "text", "text": {}}]}]}),
        ("responses", {"input": [BLOCK]}),
        ("responses", {"input": {"role": "user", "content": BLOCK}}),
        ("completions", {"prompt": {"text": BLOCK}}),
    ],
)
def test_malformed_shapes_are_refused_before_any_call(
    guard, openai_client, fake_upstream, method, kwargs
):
    client = guard.wrap(openai_client)
    create = {
        "chat": client.chat.completions.create,
        "responses": client.responses.create,
        "completions": client.completions.create,
    }[method]
    with pytest.raises(TypeError):
        create(model="m", **kwargs)
    assert fake_upstream.requests == []


def test_unknown_part_types_with_text_are_checked(guard, openai_client, fake_upstream):
    content = [{"type": "future_text", "text": BLOCK}]
    with pytest.raises(ContentBlocked) as info:
        guard.wrap(openai_client).chat.completions.create(
            model="m", messages=[{"role": "user", "content": content}]
        )
    assert any("unknown part type" in n for n in info.value.verdict.notes)
