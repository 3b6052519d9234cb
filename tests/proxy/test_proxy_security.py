"""Auth modes, the upstream key's secrecy, body limits, bad input, policy selection, audit log."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import openai
import pytest

from guardrail import Guard, load_policy
from guardrail.testing import FakeClassifier
from tests.conftest import POLICIES
from tests.fake_upstream import error_reply

UPSTREAM_KEY = "sk-upstream-SECRET-0123456789"
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def test_proxy_keys_are_required_and_upstream_key_is_sent(make_proxy, fake_upstream):
    base = make_proxy(api_keys="key-one,key-two", upstream_api_key=UPSTREAM_KEY)
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "Basic key-one"}):
        r = httpx.post(f"{base}/chat/completions", json=BODY, headers=headers)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "invalid_api_key"
        assert UPSTREAM_KEY not in r.text
    assert fake_upstream.requests == []
    for key in ("key-one", "key-two"):
        ok = openai.OpenAI(base_url=base, api_key=key, max_retries=0)
        assert ok.chat.completions.create(**BODY).choices[0].message.content
    sent = fake_upstream.calls("/v1/chat/completions")
    assert [r.headers["authorization"] for r in sent] == [f"Bearer {UPSTREAM_KEY}"] * 2


def test_every_endpoint_needs_the_proxy_key(make_proxy):
    base = make_proxy(api_keys="k", upstream_api_key=UPSTREAM_KEY)
    for method, path in [
        ("POST", "/chat/completions"),
        ("POST", "/completions"),
        ("POST", "/moderations"),
        ("POST", "/embeddings"),
        ("POST", "/responses"),
        ("GET", "/models"),
    ]:
        assert httpx.request(method, f"{base}{path}", json={}).status_code == 401, path


def test_pass_through_mode_forwards_the_callers_authorization(make_proxy, fake_upstream):
    base = make_proxy()
    c = openai.OpenAI(base_url=base, api_key="sk-callers-own", max_retries=0)
    c.chat.completions.create(**BODY)
    c.models.list()
    assert {r.headers["authorization"] for r in fake_upstream.requests} == {"Bearer sk-callers-own"}
    assert "cookie" not in fake_upstream.requests[0].headers


def test_upstream_key_without_proxy_keys_is_refused_at_startup():
    from guardrail.adapters.proxy import ProxySettings

    from guardrail.errors import ConfigError

    with pytest.raises(ValueError, match="GUARDRAIL_API_KEYS"):
        ProxySettings(upstream_api_key=UPSTREAM_KEY)
    from guardrail.adapters.proxy import load_settings

    with pytest.raises(ConfigError, match="allow_anonymous|ALLOW_ANONYMOUS"):
        load_settings(upstream_api_key=UPSTREAM_KEY)
    assert load_settings(upstream_api_key=UPSTREAM_KEY, allow_anonymous=True).pass_through


def test_upstream_key_never_leaks(make_proxy, fake_upstream, caplog, tmp_path: Path):
    audit = tmp_path / "audit.jsonl"
    base = make_proxy(
        api_keys="k", upstream_api_key=UPSTREAM_KEY, audit_log=str(audit), audit_log_text=True
    )
    fake_upstream.script(
        "/v1/chat/completions",
        error_reply(401, f"Incorrect API key provided: {UPSTREAM_KEY}", code="invalid_api_key"),
    )
    caplog.set_level(logging.DEBUG)
    r = httpx.post(f"{base}/chat/completions", json=BODY, headers={"authorization": "Bearer k"})
    assert r.status_code == 401  # the upstream's status comes back...
    assert "Incorrect API key provided: ***" in r.json()["error"]["message"]  # ...scrubbed
    assert UPSTREAM_KEY not in r.text and UPSTREAM_KEY not in str(r.headers)
    r = httpx.get(base.removesuffix("/v1") + "/metrics", headers={"authorization": "Bearer k"})
    assert r.status_code == 200 and UPSTREAM_KEY not in r.text
    assert UPSTREAM_KEY not in caplog.text
    assert UPSTREAM_KEY not in audit.read_text()


def test_body_over_limit_is_413(make_proxy, fake_upstream):
    base = make_proxy(max_body_bytes=2000)
    big = {"model": "m", "messages": [{"role": "user", "content": "x" * 5000}]}
    r = httpx.post(f"{base}/chat/completions", json=big)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "request_too_large"

    # Without a Content-Length (chunked upload) the limit is enforced while reading.
    def chunks():
        for _ in range(10):
            yield b"x" * 1000

    r = httpx.post(
        f"{base}/chat/completions", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    assert fake_upstream.requests == []


@pytest.mark.parametrize(
    ("content", "code", "param"),
    [
        (b"{not json", "invalid_json", None),
        (b"", "invalid_json", None),
        (b"[1, 2]", "invalid_request", None),
        (b'{"messages": []}', "invalid_request", "model"),
        (b'{"model": "m", "messages": []}', "invalid_request", "messages"),
        (b'{"model": "m", "messages": [{"content": "x"}]}', "invalid_request", "messages.0.role"),
        (b'{"model": "m", "messages": "hi"}', "invalid_request", "messages"),
        (b"\xff\xfe{}", "invalid_json", None),
    ],
)
def test_bad_input_is_400_in_openai_shape(make_proxy, content, code, param):
    base = make_proxy()
    r = httpx.post(
        f"{base}/chat/completions", content=content, headers={"content-type": "application/json"}
    )
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code
    assert error["param"] == param
    assert "detail" not in r.json()


def test_policy_header_selects_from_the_allow_list(make_proxy, fake: FakeClassifier):
    strict = load_policy(POLICIES / "basic.yaml").replace(
        name="strict-fixture", thresholds={"prompt": {"unsafe": {"block_at": 0.1}}}
    )
    strict_guard = Guard(strict, classifier=FakeClassifier(unsafe=0.5))
    base = make_proxy(guards={"strict-fixture": strict_guard})
    r = httpx.post(f"{base}/chat/completions", json=BODY)
    assert r.status_code == 200 and r.headers["x-guardrail-policy"] == "basic"
    r = httpx.post(
        f"{base}/chat/completions", json=BODY, headers={"x-guardrail-policy": "strict-fixture"}
    )
    assert r.status_code == 400 and r.json()["guardrail"]["policy"] == "strict-fixture"
    r = httpx.post(f"{base}/chat/completions", json=BODY, headers={"x-guardrail-policy": "other"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "policy_not_allowed"


def test_named_policies_are_loaded_and_allow_listed(fake_upstream):
    from guardrail.adapters.proxy import ProxySettings, create_app

    settings = ProxySettings(
        upstream_url=fake_upstream.base_url,
        policy=str(POLICIES / "basic.yaml"),
        policies=f"{POLICIES / 'cli_rules.yaml'}",
    )
    app = create_app(settings)
    guards = app.state.service.guards
    assert set(guards) == {str(POLICIES / "basic.yaml"), str(POLICIES / "cli_rules.yaml")}
    # the proxy's classifier timeout applies to policies it loads
    assert all(g.policy.timeout_s == settings.classify_timeout_s for g in guards.values())


def test_audit_log_has_one_line_per_verdict(make_proxy, fake_upstream, tmp_path: Path):
    audit = tmp_path / "audit.jsonl"
    base = make_proxy(audit_log=str(audit))
    httpx.post(f"{base}/chat/completions", json=BODY)
    bad = {"model": "m", "messages": [{"role": "user", "content": "BLOCKME"}]}
    httpx.post(f"{base}/chat/completions", json=bad)
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [(x["role"], x["action"], x["stage"]) for x in lines] == [
        ("prompt", "allow", "pre_call"),
        ("response", "allow", "post_call"),
        ("prompt", "block", "pre_call"),
    ]
    blocked = lines[-1]
    assert blocked["policy"] == "basic" and blocked["scores"]["unsafe"] == 0.95
    assert blocked["categories"][0]["category"] == "unsafe"
    assert len(blocked["text_sha256"]) == 64 and "text" not in blocked
    assert blocked["latency_ms"] >= 0 and blocked["route"] == "/v1/chat/completions"
    assert lines[0]["request_id"] == lines[1]["request_id"] != lines[2]["request_id"]
