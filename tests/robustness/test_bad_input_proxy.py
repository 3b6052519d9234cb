"""The bad-input contract of the proxy: malformed, hostile or oversized requests get a 4xx in
OpenAI's error shape (or a verdict), never a 500, a hang or a forwarded unchecked text."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from guardrail.adapters.proxy import ProxySettings, create_app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guardrail import Guard, load_policy
from guardrail.testing import FakeClassifier
from tests.conftest import POLICIES
from tests.fake_upstream import FakeUpstream

HEADERS = {"content-type": "application/json", "authorization": "Bearer test"}
CHAT = "/v1/chat/completions"


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


@pytest.fixture(scope="module")
def client(upstream: FakeUpstream) -> Iterator[TestClient]:
    fake = FakeClassifier(by_substring={"BLOCKME": {"unsafe": 0.95}})
    guard = Guard(load_policy(POLICIES / "basic.yaml"), classifier=fake)
    app = create_app(ProxySettings(upstream_url=upstream.base_url), guard=guard)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def post(client: TestClient, path: str, body: object | bytes) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post(path, content=data, headers=HEADERS)
    return response.status_code, response.json()


def assert_openai_error(status: int, body: dict, expected: int) -> None:
    assert status == expected, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert body["error"]["type"]


def chat(content: object, **extra: object) -> dict:
    return {"model": "m", "messages": [{"role": "user", "content": content}], **extra}


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"\xff\xfe{}",  # invalid UTF-8
        b"",
        b"[1, 2]",  # JSON, but not an object
        b'"a string"',
        b"null",
        b"[" * 100_000 + b"]" * 100_000,  # deeply nested
        b'{"model": "m", "messages": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
        b'{"model":"m","messages":[{"role":"user","content":"\\ud800 BLOCKME"}]}',  # lone surrogate
        b'{"model":"m","messages":[{"role":"user","content":"\\udfff"}]}',
    ],
)
def test_malformed_json_is_a_400(client, upstream, raw):
    before = len(upstream.requests)
    status, body = post(client, CHAT, raw)
    assert_openai_error(status, body, 400)
    assert len(upstream.requests) == before  # nothing was forwarded


@pytest.mark.parametrize(
    "body",
    [
        {"model": "m", "messages": "hi"},
        {"model": "m", "messages": [1]},
        {"model": "m", "messages": []},
        chat(5),
        chat([{"type": "text", "text": 5}]),
        {"model": 5, "messages": [{"role": "user", "content": "x"}]},
        {"model": "m", "messages": [{"role": 5, "content": "x"}]},
    ],
)
def test_wrong_types_in_chat_fields_are_a_400(client, upstream, body):
    before = len(upstream.requests)
    status, payload = post(client, CHAT, body)
    assert_openai_error(status, payload, 400)
    assert len(upstream.requests) == before


def test_fields_without_text_are_forwarded_for_the_upstream_to_judge(client, upstream):
    # The proxy validates what it moderates; sampling options are the upstream's business.
    status, _ = post(client, CHAT, chat("x", max_tokens="many", temperature={"a": 1}))
    assert status == 200
    assert upstream.requests[-1].body["max_tokens"] == "many"


def test_huge_body_is_a_413(client):
    status, body = post(client, CHAT, chat("x" * (10 * 1024 * 1024)))
    assert_openai_error(status, body, 413)


@pytest.mark.parametrize("content", ["", "   ", "a\x00b\x00", "\u200b\u200b"])
def test_empty_nul_and_invisible_content_is_checked_and_forwarded(client, upstream, content):
    status, body = post(client, CHAT, chat(content))
    assert status == 200, body
    assert upstream.requests[-1].body["messages"][0]["content"] == content


def test_obfuscated_prompt_is_blocked_through_a_view(client, upstream):
    before = len(upstream.requests)
    status, body = post(client, CHAT, chat("please B\u200bLOCK\u200bME now"))
    assert status == 400 and body["error"]["code"] == "content_filter"
    assert "view:invisible" in json.dumps(body)
    assert len(upstream.requests) == before


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/moderations", {"input": 5}),
        ("/v1/moderations", {"input": [1, 2]}),
        ("/v1/moderations", {"input": ["a", None]}),
        ("/v1/moderations", b'{"input":"\\ud800"}'),
        ("/v1/completions", {"model": "m", "prompt": None}),
        ("/v1/completions", {"model": "m", "prompt": [1, 2, 3]}),  # token ids: not checkable
        ("/v1/completions", b'{"model":"m","prompt":"\\udfff"}'),
        ("/v1/responses", {"model": "m", "input": 5}),
        ("/v1/embeddings", {"model": "m", "input": {"a": 1}}),
    ],
)
def test_other_endpoints_reject_wrong_types_with_a_400(client, path, body):
    status, payload = post(client, path, body)
    assert_openai_error(status, payload, 400)


def test_moderations_of_empty_and_nul_text(client):
    status, body = post(client, "/v1/moderations", {"input": ["", "a\x00b", "B\u200bLOCKME"]})
    assert status == 200, body
    assert [r["flagged"] for r in body["results"]] == [False, False, True]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=10,
)
CHAT_FIELDS = ["model", "messages", "max_tokens", "temperature", "n", "tools", "user", "stop"]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.dictionaries(st.sampled_from(CHAT_FIELDS), JSON_VALUES, max_size=4),
    st.sampled_from([CHAT, "/v1/completions", "/v1/moderations", "/v1/responses"]),
)
def test_fuzzed_bodies_never_get_a_5xx(client, body, path):
    status, payload = post(client, path, body)
    assert status < 500, payload
    if status >= 400:
        assert payload["error"]["message"]
