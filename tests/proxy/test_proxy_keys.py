"""Named proxy keys: stored hashed, bound to a policy, the policies they may switch to, models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from click.testing import CliRunner
from guardrail.adapters.proxy import ProxySettings, load_settings
from guardrail.adapters.proxy.settings import hash_key

from guardrail import Guard, load_policy
from guardrail.cli import cli
from guardrail.errors import ConfigError
from guardrail.testing import FakeClassifier
from tests.conftest import POLICIES

SEARCH_KEY = "sk-team-search-0123456789abcdef"
CHAT_KEY = "sk-team-chat-fedcba9876543210"
# "hi" scores 0.5 with this classifier: blocked by the strict policy, allowed by `basic`.
HI = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def strict_guard() -> Guard:
    strict = load_policy(POLICIES / "basic.yaml").replace(
        name="strict-fixture", thresholds={"prompt": {"unsafe": {"block_at": 0.1}}}
    )
    return Guard(strict, classifier=FakeClassifier(unsafe=0.5))


def keyed_proxy(make_proxy: Any, strict_guard: Guard, **options: Any) -> str:
    keys = [
        # the search team is held to the strict policy and may not switch away from it
        {"name": "team-search", "sha256": hash_key(SEARCH_KEY), "policy": "strict"},
        # the chat team runs the default policy, may switch to strict, and calls one model
        {
            "name": "team-chat",
            "sha256": hash_key(CHAT_KEY).upper(),
            "policies": ["strict"],
            "models": ["m", "m-large"],
        },
    ]
    return str(make_proxy(guards={"strict": strict_guard}, keys=keys, **options))


def post(base: str, key: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(
        f"{base}/chat/completions", json=body, headers={"authorization": f"Bearer {key}", **headers}
    )


def test_each_key_gets_its_own_policy(make_proxy, strict_guard):
    base = keyed_proxy(make_proxy, strict_guard)
    r = post(base, SEARCH_KEY, HI)
    assert r.status_code == 400 and r.json()["guardrail"]["policy"] == "strict-fixture"
    r = post(base, CHAT_KEY, HI)
    assert r.status_code == 200 and r.headers["x-guardrail-policy"] == "basic"
    # the real client, with the key as its api_key
    chat = openai.OpenAI(base_url=base, api_key=CHAT_KEY, max_retries=0)
    assert chat.chat.completions.create(**HI).choices[0].message.content


def test_a_key_switches_only_to_its_listed_policies(make_proxy, strict_guard):
    base = keyed_proxy(make_proxy, strict_guard)
    r = post(base, CHAT_KEY, HI, **{"x-guardrail-policy": "strict"})
    assert r.status_code == 400 and r.json()["guardrail"]["policy"] == "strict-fixture"
    # the search team's list is empty: not even the proxy's default policy
    r = post(base, SEARCH_KEY, HI, **{"x-guardrail-policy": "default"})
    assert r.status_code == 403
    error = r.json()["error"]
    assert error["code"] == "policy_not_allowed" and "team-search" in error["message"]
    assert SEARCH_KEY not in r.text
    # its own policy named in the header is fine
    r = post(base, SEARCH_KEY, HI, **{"x-guardrail-policy": "strict"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "content_filter"


def test_a_key_calls_only_its_models(make_proxy, strict_guard, fake_upstream):
    base = keyed_proxy(make_proxy, strict_guard)
    r = post(base, CHAT_KEY, {**HI, "model": "gpt-other"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "model_not_allowed"
    assert fake_upstream.calls("/v1/chat/completions") == []
    chat = openai.OpenAI(base_url=base, api_key=CHAT_KEY, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):
        chat.embeddings.create(model="gpt-other", input="hi")
    # the model list shows only the key's models; a key without a list sees them all
    assert [m.id for m in chat.models.list()] == []
    search = openai.OpenAI(base_url=base, api_key=SEARCH_KEY, max_retries=0)
    assert [m.id for m in search.models.list()] == ["fake-model"]


def test_wrong_or_missing_keys_are_refused_and_x_api_key_works(make_proxy, strict_guard):
    base = keyed_proxy(make_proxy, strict_guard)
    assert post(base, "sk-nobody", HI).status_code == 401
    assert httpx.post(f"{base}/chat/completions", json=HI).status_code == 401
    # the configured hash itself is not a key
    assert post(base, hash_key(CHAT_KEY), HI).status_code == 401
    r = httpx.post(f"{base}/chat/completions", json=HI, headers={"x-api-key": CHAT_KEY})
    assert r.status_code == 200


def test_audit_log_and_metrics_name_the_key_never_the_key(make_proxy, strict_guard, tmp_path):
    audit = tmp_path / "audit.jsonl"
    base = keyed_proxy(make_proxy, strict_guard, audit_log=str(audit), audit_log_text=True)
    post(base, SEARCH_KEY, HI)
    post(base, CHAT_KEY, HI)
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [(x["key"], x["policy"], x["action"]) for x in lines] == [
        ("team-search", "strict-fixture", "block"),
        ("team-chat", "basic", "allow"),
        ("team-chat", "basic", "allow"),
    ]
    # (with proxy keys set, /metrics needs one too)
    auth = {"authorization": f"Bearer {CHAT_KEY}"}
    metrics = httpx.get(base.removesuffix("/v1") + "/metrics", headers=auth).text
    assert 'guardrail_proxy_verdicts_total{action="block",key="team-search",role="prompt"} 1.0' in (
        metrics
    )
    assert 'key_requests_total{key="team-chat",route="/v1/chat/completions"} 1.0' in metrics
    for secret in (SEARCH_KEY, CHAT_KEY, hash_key(SEARCH_KEY)):
        assert secret not in audit.read_text() and secret not in metrics


def test_keys_load_from_the_settings_file(tmp_path: Path):
    config = tmp_path / "proxy.yaml"
    config.write_text(
        "keys:\n"
        f"  - {{name: team-a, sha256: {hash_key('a-key')}, policy: strict,"
        " policies: [default], models: [m]}\n"
    )
    settings = load_settings(config)
    assert not settings.pass_through
    assert settings.keys[0].name == "team-a" and settings.keys[0].models == ["m"]
    assert settings.all_policies() == ["default", "strict"]


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ([{"name": "a", "sha256": "abc"}], "sha256"),
        ([{"name": "a", "sha256": hash_key("x"), "key": "x"}], "key"),
        (
            [{"name": "a", "sha256": hash_key("x")}, {"name": "a", "sha256": hash_key("y")}],
            "names must be unique",
        ),
        (
            [{"name": "a", "sha256": hash_key("x")}, {"name": "b", "sha256": hash_key("x")}],
            "configured twice",
        ),
        ([{"name": "has space", "sha256": hash_key("x")}], "name"),
    ],
)
def test_bad_keys_are_config_errors(keys: list[dict[str, Any]], message: str):
    with pytest.raises(ConfigError, match=message):
        load_settings(keys=keys)


def test_a_plain_key_also_listed_hashed_is_refused():
    with pytest.raises(ConfigError, match="configured twice"):
        load_settings(api_keys="k1", keys=[{"name": "a", "sha256": hash_key("k1")}])


def test_named_keys_alone_protect_the_upstream_key():
    settings = ProxySettings(
        upstream_api_key="sk-up", keys=[{"name": "a", "sha256": hash_key("k")}]
    )
    assert not settings.pass_through


def test_hash_key_command_prints_the_digest():
    result = CliRunner().invoke(cli, ["hash-key"], input=f"{CHAT_KEY}\n")
    assert result.exit_code == 0 and result.output.strip() == hash_key(CHAT_KEY)
    result = CliRunner().invoke(cli, ["hash-key"], input="")
    assert result.exit_code != 0 and "no key" in result.output
