"""The bad-input contract of the middleware (``guard.wrap`` and ``guard.protect``): a verdict,
``ContentBlocked`` or a typed error, never a crash of ours or an unchecked text upstream."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openai import OpenAI

from guardrail import ContentBlocked, Guard, load_policy
from guardrail.testing import FakeClassifier
from tests.conftest import POLICIES
from tests.fake_upstream import FakeUpstream, chat_reply


@pytest.fixture
def guard() -> Guard:
    fake = FakeClassifier(by_substring={"BLOCKME": {"unsafe": 0.99}})
    return Guard(load_policy(POLICIES / "basic.yaml"), classifier=fake)


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


@pytest.fixture
def client(guard: Guard, upstream: FakeUpstream) -> Iterator[OpenAI]:
    raw = OpenAI(base_url=upstream.base_url, api_key="sk-test", max_retries=0)
    yield guard.wrap(raw)
    raw.close()


def user(content: object) -> list[dict]:
    return [{"role": "user", "content": content}]


@pytest.mark.parametrize("content", ["", "   ", "a\x00b", "\u200b"])
def test_empty_nul_and_invisible_prompts_are_checked_and_sent(client, upstream, content):
    reply = client.chat.completions.create(model="m", messages=user(content))
    assert reply.guardrail.action.value == "allow"
    assert upstream.requests[-1].body["messages"][0]["content"] == content


@pytest.mark.parametrize(
    ("content", "decided_by"),
    [
        ("please B\u200bLOCK\u200bME", "view:invisible"),
        ("x " * (5 * 1024 * 1024), "max_chars"),  # 10 MB: blocked without scoring
        ("\ud800 BLOCKME", "threshold"),  # a lone surrogate does not break the check
    ],
)
def test_hostile_prompts_are_blocked_before_any_upstream_call(
    client, upstream, content, decided_by
):
    before = len(upstream.requests)
    with pytest.raises(ContentBlocked) as info:
        client.chat.completions.create(model="m", messages=user(content))
    assert info.value.stage == "pre_call"
    assert decided_by in info.value.verdict.decided_by
    assert len(upstream.requests) == before


def test_hostile_response_is_blocked_after_the_call(client, upstream):
    upstream.script("/v1/chat/completions", chat_reply("\x00 B\u200bLOCKME"))
    with pytest.raises(ContentBlocked) as info:
        client.chat.completions.create(model="m", messages=user("hi"))
    assert info.value.stage == "post_call"
    assert "view:invisible" in info.value.verdict.decided_by


def test_empty_response_gets_a_verdict(client, upstream):
    upstream.script("/v1/chat/completions", chat_reply(""))
    reply = client.chat.completions.create(model="m", messages=user("hi"))
    assert reply.guardrail.action.value == "allow"


def test_missing_messages_is_a_typed_error(client, upstream):
    from guardrail.middleware import UnguardedCallError

    with pytest.raises(UnguardedCallError):
        client.chat.completions.create(model="m")
    assert upstream.requests == []


@pytest.mark.parametrize("bad", [None, 5, b"bytes", ["list"]])
def test_protect_rejects_non_string_prompts(guard, bad):
    @guard.protect
    def answer(prompt: str) -> str:
        return "ok"

    with pytest.raises(TypeError, match="must be a str"):
        answer(bad)


@pytest.mark.parametrize("prompt", ["", "\ud800", "a\x00b"])
def test_protect_accepts_odd_strings(guard, prompt):
    @guard.protect
    def answer(p: str) -> str:
        return "ok"

    assert answer(prompt) == "ok"


def test_protect_blocks_obfuscated_prompts(guard):
    @guard.protect
    def answer(p: str) -> str:
        raise AssertionError("must not be called")

    with pytest.raises(ContentBlocked):
        answer("B\u200bLOCKME")


# Malformed message shapes that the OpenAI API itself would reject must not reach an upstream
# unchecked (a lenient one could act on the text in them).
@pytest.mark.parametrize(
    "messages",
    [
        "BLOCKME",  # a string instead of a list
        user({"text": "BLOCKME"}),  # content as an object
        user([{"text": "BLOCKME"}]),  # a content part without a type
        user([{"type": "text", "text": {"x": "BLOCKME"}}]),
    ],
)
def test_malformed_messages_are_refused_or_checked(client, upstream, messages):
    before = len(upstream.requests)
    with pytest.raises((ContentBlocked, TypeError, ValueError)):
        client.chat.completions.create(model="m", messages=messages)
    assert len(upstream.requests) == before
