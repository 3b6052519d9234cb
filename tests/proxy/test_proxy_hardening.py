"""Issue 17's probes, kept: what is checked is what is sent, no upstream key by any channel,
half-sent bodies, input caps, streams without a terminator, keys for the docs and metrics."""

from __future__ import annotations

import json
import logging
import socket
import time
from pathlib import Path

import httpx
import openai
import pytest

from tests.fake_upstream import (
    FakeUpstream,
    Reply,
    StreamReply,
    chat_reply,
    chat_stream,
    error_reply,
)

UPSTREAM_KEY = "sk-upstream-SECRET-0123456789"
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
PROXY_KEY = {"authorization": "Bearer k"}


def post_raw(base: str, path: str, content: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{base}{path}", content=content, headers={"content-type": "application/json", **headers}
    )


# -- (3) what is checked is what is sent ------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b'{"model": "m", "messages": [{"role": "user", "content": "BLOCKME", "content": "hi"}]}',
        b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "model": "m2"}',
    ],
)
def test_duplicate_json_keys_are_refused(make_proxy, fake_upstream: FakeUpstream, content):
    base = make_proxy()
    r = post_raw(base, "/chat/completions", content)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "duplicate_key"
    assert "duplicate key" in r.json()["error"]["message"]
    assert fake_upstream.requests == []


def test_non_standard_json_numbers_are_refused(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy()
    content = b'{"model": "m", "temperature": NaN, "messages": [{"role": "user", "content": "hi"}]}'
    r = post_raw(base, "/chat/completions", content)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    assert fake_upstream.requests == []


def test_upstream_gets_the_proxys_serialisation_of_what_was_checked(
    make_proxy, fake_upstream: FakeUpstream
):
    base = make_proxy()
    # Escapes, odd spacing and an unknown field: the upstream gets the parsed object, re-encoded.
    content = (
        b'{ "model" : "m",\n "messages": [{"role": "user", "content": "\\u0068i \\u00e9"}],'
        b' "x_extra": {"n": 1.50} }'
    )
    assert post_raw(base, "/chat/completions", content).status_code == 200
    for path, body in [
        ("/completions", {"model": "m", "prompt": "hi", "suffix": "there"}),
        ("/embeddings", {"model": "m", "input": ["a", "b"]}),
        ("/responses", {"model": "m", "input": "hi"}),
    ]:
        assert post_raw(base, path, json.dumps(body, indent=2).encode()).status_code == 200
    sent = [r.raw for r in fake_upstream.requests]
    assert (
        sent[0]
        == (
            '{"model":"m","messages":[{"role":"user","content":"hi é"}],"x_extra":{"n":1.5}}'
        ).encode()
    )
    assert sent[1] == b'{"model":"m","prompt":"hi","suffix":"there"}'
    assert sent[2] == b'{"model":"m","input":["a","b"]}'
    assert sent[3] == b'{"model":"m","input":"hi"}'


def test_a_lone_surrogate_is_refused(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy()
    content = b'{"model": "m", "messages": [{"role": "user", "content": "\\ud800 x"}]}'
    r = post_raw(base, "/chat/completions", content)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    assert "lone surrogate" in r.json()["error"]["message"]
    assert fake_upstream.requests == []


# -- the upstream key, by every channel -------------------------------------------------------


@pytest.fixture
def keyed(make_proxy, fake_upstream: FakeUpstream, tmp_path: Path):
    """A proxy with proxy keys and an upstream key, in front of an upstream that echoes it."""
    fake_upstream.echo_auth = True
    audit = tmp_path / "audit.jsonl"
    base = make_proxy(
        api_keys="k", upstream_api_key=UPSTREAM_KEY, audit_log=str(audit), audit_log_text=True
    )
    return base, audit


def assert_no_key(r: httpx.Response) -> None:
    assert UPSTREAM_KEY not in r.text
    assert all(UPSTREAM_KEY not in v for v in r.headers.values()), r.headers


def test_echoed_key_never_comes_back_in_headers(keyed, fake_upstream: FakeUpstream):
    base, _ = keyed
    fake_upstream.script("/v1/chat/completions", chat_reply("fine"), error_reply(401, "bad key"))
    ok = httpx.post(f"{base}/chat/completions", json=BODY, headers=PROXY_KEY)
    assert ok.status_code == 200
    # the echoing upstream did get the key, and sent it back in three headers
    assert fake_upstream.requests[0].headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert ok.headers["x-request-id"] == "echo Bearer ***"
    # an upstream header outside the allow-list never comes back, scrubbed or not
    assert "openai-organization" not in ok.headers and "x-echo-authorization" not in ok.headers
    failed = httpx.post(f"{base}/chat/completions", json=BODY, headers=PROXY_KEY)
    assert failed.status_code == 401 and failed.headers["x-request-id"] == "echo Bearer ***"
    models = httpx.get(f"{base}/models", headers=PROXY_KEY)
    stream = httpx.post(
        f"{base}/chat/completions", json={**BODY, "stream": True}, headers=PROXY_KEY
    )
    for r in (ok, failed, models, stream):
        assert_no_key(r)


def test_echoed_key_never_comes_back_in_bodies(keyed, fake_upstream: FakeUpstream):
    base, audit = keyed
    leak = f"your key is {UPSTREAM_KEY}."
    fake_upstream.script("/v1/chat/completions", chat_reply(leak))
    fake_upstream.script("/v1/embeddings", Reply({"object": "list", "data": [], "note": leak}))
    c = openai.OpenAI(base_url=base, api_key="k", max_retries=0)
    answer = c.chat.completions.create(**BODY)  # (the policy's secrets rule blocks this one)
    assert UPSTREAM_KEY not in answer.model_dump_json()
    # a body the proxy passes on untouched: masked, and its content-length fixed
    r = httpx.post(f"{base}/embeddings", json={"model": "m", "input": "x"}, headers=PROXY_KEY)
    assert r.json()["note"] == "your key is ***."
    assert int(r.headers["content-length"]) == len(r.content)
    # the audit log has the texts (audit_log_text) but not the key
    text = audit.read_text()
    assert "your key is ***." in text and UPSTREAM_KEY not in text


def test_echoed_key_never_comes_back_in_sse_events(keyed, fake_upstream: FakeUpstream):
    base, audit = keyed
    first = chat_stream("Hello ", "there").events[:2]
    error = {"error": {"message": f"Invalid key {UPSTREAM_KEY}", "type": "auth", "code": None}}
    fake_upstream.script(
        "/v1/chat/completions",
        StreamReply((*first, (None, error)), done=False),
        chat_stream(f"key: {UPSTREAM_KEY} ", "end"),
    )
    bodies = []
    for _ in range(2):
        with httpx.stream(
            "POST", f"{base}/chat/completions", json={**BODY, "stream": True}, headers=PROXY_KEY
        ) as r:
            bodies.append(r.read().decode())
    assert "Invalid key ***" in bodies[0]  # the mid-stream error event, masked
    assert "Hello " in bodies[0]
    assert all(UPSTREAM_KEY not in body for body in bodies)
    assert UPSTREAM_KEY not in audit.read_text()


def test_key_is_masked_in_log_records(keyed, caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("guardrail", "guardrail.proxy", "uvicorn.error"):
        logging.getLogger(name).warning("upstream said %s", f"bad key {UPSTREAM_KEY}")
    try:
        raise RuntimeError(f"key {UPSTREAM_KEY}")
    except RuntimeError:
        logging.getLogger("guardrail.proxy").exception("failed")
    assert caplog.text.count("bad key ***") == 3
    assert "key ***" in caplog.text and UPSTREAM_KEY not in caplog.text


# -- (5) half-sent bodies ---------------------------------------------------------------------


def _raw_request(base: str, declared: int, sent: bytes) -> socket.socket:
    host, port = base.removeprefix("http://").removesuffix("/v1").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: {host}\r\n"
        f"content-type: application/json\r\ncontent-length: {declared}\r\n\r\n"
    )
    sock.sendall(head.encode() + sent)
    return sock


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_half_sent_body_times_out_with_408(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy(body_timeout_s=0.5)
    started = time.monotonic()
    with _raw_request(base, 100, b'{"') as sock:
        answer = b""
        while b"\r\n\r\n" not in answer:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    assert time.monotonic() - started < 5
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"request_timeout" in answer or b"\r\n\r\n" in answer
    assert fake_upstream.requests == []


def test_client_dropping_out_mid_body_is_a_disconnect(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy()
    records = _Records()
    watched = [logging.getLogger(n) for n in ("uvicorn.error", "guardrail.proxy")]
    for logger in watched:
        logger.addHandler(records)
    try:
        with _raw_request(base, 100, b'{"'):
            pass  # closed at once: 2 of 100 bytes sent
        deadline = time.monotonic() + 5
        metrics = ""
        while 'status="499"' not in metrics and time.monotonic() < deadline:
            time.sleep(0.05)
            metrics = httpx.get(base.removesuffix("/v1") + "/metrics").text
    finally:
        for logger in watched:
            logger.removeHandler(records)
    assert 'route="/v1/chat/completions",status="499"' in metrics
    assert 'status="500"' not in metrics
    assert not [r for r in records.records if r.levelno >= logging.ERROR or r.exc_info]
    # the server is fine
    assert httpx.post(f"{base}/chat/completions", json=BODY).status_code == 200


# -- (6) input caps ---------------------------------------------------------------------------


def test_moderations_and_embeddings_cap_inputs_and_characters(
    make_proxy, fake_upstream: FakeUpstream
):
    base = make_proxy(max_inputs=3, max_input_chars=100)
    cases = [
        ("/moderations", {"input": ["a", "b", "c", "d"]}, 400, "too_many_inputs"),
        ("/moderations", {"input": ["x" * 60, "y" * 60]}, 413, "request_too_large"),
        ("/moderations", {"input": "x" * 101}, 413, "request_too_large"),
        ("/moderations", {"input": [{"type": "text", "text": "a"}] * 4}, 400, "too_many_inputs"),
        ("/embeddings", {"model": "m", "input": ["a"] * 4}, 400, "too_many_inputs"),
        ("/embeddings", {"model": "m", "input": "x" * 101}, 413, "request_too_large"),
        ("/completions", {"model": "m", "prompt": ["a"] * 4}, 400, "too_many_inputs"),
    ]
    for path, body, status, code in cases:
        r = httpx.post(f"{base}{path}", json=body)
        assert r.status_code == status, (path, r.text)
        error = r.json()["error"]
        assert error["code"] == code and error["param"] in ("input", "prompt")
        assert "GUARDRAIL_MAX_INPUT" in error["message"]
    assert fake_upstream.requests == []
    assert httpx.post(f"{base}/moderations", json={"input": ["a", "b", "c"]}).status_code != 400


# -- (7) streams without their terminator -----------------------------------------------------


def test_close_delimited_stream_cut_mid_way_ends_with_an_error_event(
    make_proxy, fake_upstream: FakeUpstream
):
    base = make_proxy(stream_check_every=5)
    pieces = ("Hello there. ", "This is fine. ", "never sent")
    fake_upstream.script(
        "/v1/chat/completions",
        chat_stream(*pieces, close_delimited=True, cut_after=3),
        chat_stream(*pieces, close_delimited=True),
    )
    c = openai.OpenAI(base_url=base, api_key="sk-caller", max_retries=0, timeout=20)
    received = []
    with pytest.raises(openai.APIError, match="without its \\[DONE\\] terminator"):
        for chunk in c.chat.completions.create(**BODY, stream=True):
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "Hello there. This is fine. "
    # the same framing, complete: no error
    whole = c.chat.completions.create(**BODY, stream=True)
    assert "".join(ch.choices[0].delta.content or "" for ch in whole) == "".join(pieces)


# -- (9) docs and metrics need a key ----------------------------------------------------------


def test_docs_openapi_and_metrics_need_a_key_when_keys_are_set(make_proxy):
    root = make_proxy(api_keys="k").removesuffix("/v1")
    for path in ("/docs", "/redoc", "/openapi.json", "/metrics"):
        r = httpx.get(root + path)
        assert r.status_code == 401, path
        assert r.json()["error"]["code"] == "invalid_api_key"
        assert httpx.get(root + path, headers=PROXY_KEY).status_code == 200, path
    assert httpx.get(root + "/healthz").status_code == 200
    opened = make_proxy(api_keys="k", public_docs=True, public_metrics=True).removesuffix("/v1")
    for path in ("/docs", "/openapi.json", "/metrics"):
        assert httpx.get(opened + path).status_code == 200, path
    # without proxy keys (pass-through), nothing is closed
    assert httpx.get(make_proxy().removesuffix("/v1") + "/openapi.json").status_code == 200


# -- (8) an honest cold start, and errors that say what they are -------------------------------


class _ColdClassifier:
    """Slow on its first call only, like a model that loads lazily."""

    name = "cold"

    def __init__(self, first_s: float) -> None:
        self.first_s = first_s
        self.calls = 0

    def score(self, samples):
        from guardrail.types import ScoreSet

        self.calls += 1
        if self.calls == 1:
            time.sleep(self.first_s)
        return [ScoreSet(unsafe=0.0, classifier=self.name) for _ in samples]


def test_classifier_is_warm_before_the_proxy_is_ready(make_proxy, fake_upstream: FakeUpstream):
    from guardrail import Guard, load_policy
    from tests.conftest import POLICIES

    cold = _ColdClassifier(first_s=1.0)
    guard = Guard(load_policy(POLICIES / "basic.yaml"), classifier=cold)
    base = make_proxy(guard=guard, classify_timeout_s=0.3)
    ready = httpx.get(base.removesuffix("/v1") + "/readyz")
    assert ready.status_code == 200 and ready.json()["classifier"] == "loaded"
    assert cold.calls == 1  # the warm-up paid for the cold start...
    r = httpx.post(f"{base}/chat/completions", json=BODY)
    assert r.status_code == 200, r.text  # ...so the first request does not time out


def test_a_verdict_that_could_not_be_checked_says_so(make_proxy, fake_upstream, caplog):
    from guardrail import Guard, load_policy
    from guardrail.testing import FakeClassifier
    from tests.conftest import POLICIES

    caplog.set_level(logging.WARNING)
    url = "http://10.9.8.7:8001/v1/chat/completions"
    slow = Guard(load_policy(POLICIES / "basic.yaml"), classifier=FakeClassifier(delay_s=0.6))
    base = make_proxy(guard=slow, classify_timeout_s=0.2)
    r = httpx.post(f"{base}/chat/completions", json=BODY)
    assert r.status_code == 400
    message = r.json()["error"]["message"]
    assert message.startswith("The request could not be checked: classifier timeout.")
    assert "(unsafe)" not in message
    assert any(
        rec.levelno == logging.WARNING and "timed out" in rec.getMessage() for rec in caplog.records
    )
    broken = FakeClassifier(error=f"openai-guard: cannot reach {url}: connection refused")
    failing = Guard(load_policy(POLICIES / "basic.yaml"), classifier=broken)
    base = make_proxy(guard=failing)
    r = httpx.post(f"{base}/chat/completions", json=BODY)
    assert r.status_code == 400 and "could not be checked: classifier error" in r.text
    assert "10.9.8.7" not in r.text and "http://" not in r.text
    # a classifier failing its warm-up: not ready, and /readyz says why
    ready = httpx.get(base.removesuffix("/v1") + "/readyz")
    assert ready.status_code == 503
    assert ready.json()["classifier"].startswith("warm-up failed: classifier error")
