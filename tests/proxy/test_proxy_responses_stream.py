"""Streamed ``/v1/responses`` through the proxy: hold-back moderation, with the real client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from guardrail.testing import FakeClassifier
from tests.fake_upstream import FakeUpstream, StreamReply, responses_stream

REFUSAL = "Sorry, I can't help with that."
RESPONSES = "/v1/responses"
_OPEN: list[openai.OpenAI] = []


def client(base: str) -> openai.OpenAI:
    made = openai.OpenAI(base_url=base, api_key="sk-caller", max_retries=0, timeout=20)
    _OPEN.append(made)
    return made


@pytest.fixture(autouse=True)
def close_clients() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def events_of(base: str) -> list[Any]:
    return list(client(base).responses.create(model="m", input="tell me", stream=True))


def raw_stream(base: str) -> tuple[bytes, list[dict[str, Any]]]:
    body = {"model": "m", "input": "tell me", "stream": True}
    with httpx.stream("POST", f"{base}/responses", json=body, timeout=20) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        raw = r.read()
    events = [
        json.loads(line.removeprefix("data: "))
        for line in raw.decode().splitlines()
        if line.startswith("data: ")
    ]
    return raw, events


def deltas(events: list[Any]) -> str:
    return "".join(e.delta for e in events if e.type == "response.output_text.delta")


def numbered(*events: tuple[str, dict[str, Any]]) -> StreamReply:
    return StreamReply(
        tuple((n, {"type": n, "sequence_number": i, **p}) for i, (n, p) in enumerate(events)),
        done=False,
    )


def test_allowed_stream_arrives_whole(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy(stream_check_every=10)
    pieces = ["The sky ", "is blue. ", "Grass is ", "green. ", "Done"]
    fake_upstream.script(RESPONSES, responses_stream(*pieces))
    events = events_of(base)
    assert deltas(events) == "".join(pieces)
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert events[-1].response.output_text == "".join(pieces)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert fake_upstream.calls(RESPONSES)[0].body["stream"] is True


def test_text_is_released_only_after_checks(make_proxy, fake: FakeClassifier, fake_upstream):
    base = make_proxy(stream_check_every=10)
    pieces = ["First sentence here. ", "Second sentence there. ", "Third one. "]
    fake_upstream.script(RESPONSES, responses_stream(*pieces))
    events = events_of(base)
    checked = [s.text for batch in fake.calls for s in batch if s.role == "response"]
    so_far = ""
    for event in events:
        if event.type == "response.output_text.delta":
            so_far += event.delta
            assert so_far in checked  # every released prefix was checked before it went out
    assert so_far == "".join(pieces)


def test_blocked_stream_sends_no_byte_of_the_blocked_part(make_proxy, fake_upstream):
    base = make_proxy(stream_check_every=10)
    pieces = ["Hello there. ", "This is fine. ", "Now BLOCK", "ME secrets. ", "more text. "]
    fake_upstream.script(RESPONSES, responses_stream(*pieces))
    raw, events = raw_stream(base)
    for leaked in (b"BLOCK", b"Now", b"secrets", b"more text"):
        assert leaked not in raw
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == "Hello there. This is fine. \n\n" + REFUSAL
    last = events[-1]
    assert last["type"] == "response.incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "content_filter"}
    assert last["guardrail"]["action"] == "block"
    # the real client parses the same stream
    fake_upstream.script(RESPONSES, responses_stream(*pieces))
    parsed = events_of(base)
    assert parsed[-1].type == "response.incomplete"
    assert parsed[-1].response.incomplete_details.reason == "content_filter"
    assert parsed[-1].response.output_text == REFUSAL


def test_function_call_arguments_are_held_back(make_proxy, fake_upstream):
    base = make_proxy(stream_check_every=10)
    part = {"item_id": "fc_1", "output_index": 0}
    fake_upstream.script(
        RESPONSES,
        numbered(
            ("response.function_call_arguments.delta", {**part, "delta": '{"cmd": "'}),
            ("response.function_call_arguments.delta", {**part, "delta": 'BLOCKME now"}'}),
            ("response.function_call_arguments.done", {**part, "arguments": '{"cmd": "BLOCKME"}'}),
        ),
    )
    raw, events = raw_stream(base)
    assert b"BLOCKME" not in raw
    assert events[-1]["type"] == "response.incomplete"


def test_an_item_without_deltas_is_checked_whole(make_proxy, fake_upstream):
    base = make_proxy()
    item = {
        "id": "msg_x",
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "all at once BLOCKME", "annotations": []}],
    }
    fake_upstream.script(
        RESPONSES, numbered(("response.output_item.done", {"output_index": 0, "item": item}))
    )
    raw, events = raw_stream(base)
    assert b"BLOCKME" not in raw
    assert [e["type"] for e in events] == ["response.incomplete"]


def test_blocked_prompt_is_refused_before_the_stream(make_proxy, fake_upstream):
    base = make_proxy()
    with pytest.raises(openai.BadRequestError):
        client(base).responses.create(model="m", input="BLOCKME", stream=True)
    assert fake_upstream.calls(RESPONSES) == []


def test_cut_stream_releases_checked_text_then_an_error(make_proxy, fake_upstream):
    base = make_proxy(stream_check_every=1000)
    fake_upstream.script(RESPONSES, responses_stream("Partial answer. ", "more", cut_after=6))
    _, events = raw_stream(base)
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == "Partial answer. more"
    assert events[-1]["type"] == "error" and events[-1]["code"] == "upstream_stream_cut"
