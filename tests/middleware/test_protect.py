"""@guard.protect on sync, async, generator and async-generator functions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from guardrail import ConfigError, ContentBlocked
from tests.middleware.conftest import BLOCK, FLAG


def test_sync_function(guard, seen):
    calls: list[str] = []

    @guard.protect(on_verdict=seen)
    def answer(prompt: str, *, style: str = "plain") -> str:
        calls.append(prompt)
        return f"{style}: {prompt.upper()}" if "bad" not in prompt else f"{BLOCK}!"

    assert answer("hello") == "plain: HELLO"
    assert answer(prompt="hi", style="fancy") == "fancy: HI"
    with pytest.raises(ContentBlocked) as info:
        answer(f"say {BLOCK}")
    assert info.value.stage == "pre_call"
    assert calls == ["hello", "hi"]  # the blocked prompt never reached the function
    with pytest.raises(ContentBlocked) as info:
        answer("something bad")
    assert info.value.stage == "post_call"
    assert ("allow", "pre_call") in seen and ("block", "post_call") in seen
    assert answer.__name__ == "answer"


def test_refuse_mode_and_bare_decorator(guard):
    @guard.protect(on_block="refuse")
    def echo(prompt: str) -> str:
        return prompt

    assert echo(BLOCK) == guard.policy.refusal_message
    assert echo(FLAG) == FLAG

    @guard.protect
    def plain(text: str) -> str:
        return text

    assert plain("hello") == "hello"


async def test_async_function(guard):
    @guard.protect
    async def answer(prompt: str) -> str:
        return f"{BLOCK}" if prompt == "trigger" else "fine"

    assert await answer("hi") == "fine"
    with pytest.raises(ContentBlocked):
        await answer("trigger")
    with pytest.raises(ContentBlocked):
        await answer(BLOCK)


def test_generator_streams_and_never_leaks(guard):
    @guard.protect(check_every=5)
    def story(prompt: str) -> Iterator[str]:
        yield from ["It was calm. ", "Then ", f"{BLOCK} ", "came. ", "The end."]

    out: list[str] = []
    with pytest.raises(ContentBlocked) as info:
        for piece in story("a story"):
            out.append(piece)
    assert "".join(out) == "It was calm. "
    assert info.value.stage == "stream_chunk"

    @guard.protect(check_every=5, on_block="refuse")
    def story2(prompt: str) -> Iterator[str]:
        yield from ["It was calm. ", f"{BLOCK}."]

    pieces = list(story2("a story"))
    assert pieces[-1] == guard.policy.refusal_message
    assert BLOCK not in "".join(pieces)


def test_generator_clean_stream_is_complete(guard):
    @guard.protect(check_every=1)
    def words(prompt: str) -> Iterator[str]:
        yield from ["One. ", "Two. ", "Three"]

    assert "".join(words("count")) == "One. Two. Three"


async def test_async_generator(guard):
    @guard.protect(check_every=5)
    async def story(prompt: str) -> AsyncIterator[str]:
        for piece in ["Calm start. ", f"then {BLOCK}. "]:
            yield piece

    out: list[str] = []
    with pytest.raises(ContentBlocked):
        async for piece in story("go"):
            out.append(piece)
    assert out == ["Calm start. "]

    @guard.protect(on_block="refuse")
    async def refused(prompt: str) -> AsyncIterator[str]:
        yield "never"

    assert [p async for p in refused(BLOCK)] == [guard.policy.refusal_message]


def test_bad_use_is_reported(guard):
    @guard.protect
    def answer(prompt: str) -> str:
        return 42  # type: ignore[return-value]  # deliberate: a non-str result

    with pytest.raises(TypeError, match="must return a str"):
        answer("hi")
    with pytest.raises(TypeError, match="must be a str"):
        answer(b"bytes")
    with pytest.raises(ConfigError):
        guard.protect(on_block="explode")
