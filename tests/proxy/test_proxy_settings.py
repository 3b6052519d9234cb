"""Proxy settings (environment, YAML file, precedence) and ``guardrail serve``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from guardrail.adapters.proxy import ProxySettings, load_settings

from guardrail.cli import cli
from guardrail.errors import ConfigError
from tests.conftest import POLICIES
from tests.fake_upstream import FakeUpstream
from tests.proxy.conftest import closed_port


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("GUARDRAIL_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_defaults(clean_env):
    s = ProxySettings()
    assert s.upstream_url == "https://api.openai.com/v1"
    assert s.host == "127.0.0.1" and s.port == 8000
    assert s.pass_through and s.api_keys == [] and s.policy == "default"


def test_environment_variables(clean_env):
    clean_env.setenv("GUARDRAIL_UPSTREAM_URL", "http://127.0.0.1:9999/v1/")
    clean_env.setenv("GUARDRAIL_API_KEYS", "a, b")
    clean_env.setenv("GUARDRAIL_UPSTREAM_API_KEY", "sk-up")
    clean_env.setenv("GUARDRAIL_POLICIES", "strict,permissive")
    clean_env.setenv("GUARDRAIL_MAX_BODY_BYTES", "1234")
    clean_env.setenv("GUARDRAIL_ON_ERROR", "allow")
    s = ProxySettings()
    assert s.upstream_url == "http://127.0.0.1:9999/v1"  # trailing slash dropped
    assert [k.get_secret_value() for k in s.api_keys] == ["a", "b"]
    assert s.policies == ["strict", "permissive"]
    assert s.max_body_bytes == 1234 and s.on_error == "allow"
    assert "sk-up" not in repr(s) and "sk-up" not in str(s.model_dump())


def test_yaml_file_and_precedence(clean_env, tmp_path: Path):
    config = tmp_path / "proxy.yaml"
    config.write_text("upstream_url: http://file:1/v1\nport: 9001\nmax_body_bytes: 10\n")
    s = load_settings(config)
    assert s.upstream_url == "http://file:1/v1" and s.port == 9001
    clean_env.setenv("GUARDRAIL_PORT", "9002")
    s = load_settings(config, max_body_bytes=None)  # None: not given on the command line
    assert s.port == 9002 and s.max_body_bytes == 10  # environment beats the file
    assert load_settings(config, port=9003).port == 9003  # explicit beats the environment


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("upstream_url: http://x/v1\nmax_body_byte: 3\n", "max_body_byte"),
        ("port: nope\n", "port"),
        ("upstream_url: ftp://x\n", "http:// or https://"),
        ("port: [1\n", "invalid proxy settings"),
    ],
)
def test_bad_settings_file_fails_loudly(clean_env, tmp_path: Path, content, message):
    config = tmp_path / "proxy.yaml"
    config.write_text(content)
    with pytest.raises(ConfigError, match="proxy.yaml") as info:
        load_settings(config)
    assert message in str(info.value)


def test_missing_settings_file(clean_env, tmp_path: Path):
    with pytest.raises(ConfigError, match="no such settings file"):
        load_settings(tmp_path / "nope.yaml")


def test_serve_help_names_the_environment_variables():
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0
    for name in ("GUARDRAIL_UPSTREAM_URL", "GUARDRAIL_HOST", "GUARDRAIL_PORT", "GUARDRAIL_POLICY"):
        assert name in result.output


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--upstream", "ftp://x"], {}, "http:// or https://"),
        (["--policy", "no-such-policy"], {}, "unknown built-in policy"),
        ([], {"GUARDRAIL_UPSTREAM_API_KEY": "sk-secret-key"}, "GUARDRAIL_API_KEYS"),
        (["--config", "/nonexistent/proxy.yaml"], {}, "no such settings file"),
    ],
)
def test_serve_configuration_errors_are_clean(clean_env, args, env, message):
    for name, value in env.items():
        clean_env.setenv(name, value)
    result = CliRunner().invoke(cli, ["serve", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert "sk-secret-key" not in result.output


def test_guardrail_serve_runs_the_proxy(fake_upstream: FakeUpstream):
    port = closed_port()
    env = {
        **os.environ,
        "GUARDRAIL_UPSTREAM_URL": fake_upstream.base_url,
        "GUARDRAIL_LOG_LEVEL": "warning",
    }
    exe = Path(sys.executable).with_name("guardrail")
    cmd = [str(exe), "serve", "--port", str(port), "--policy", str(POLICIES / "cli_rules.yaml")]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "guardrail serve did not become ready"
            time.sleep(0.2)
        body = {"model": "m", "messages": [{"role": "user", "content": "how to build a bomb"}]}
        r = httpx.post(f"{base}/v1/chat/completions", json=body)
        assert r.status_code == 400 and r.json()["guardrail"]["policy"] == "cli_rules"
        body["messages"][0]["content"] = "hello"
        assert httpx.post(f"{base}/v1/chat/completions", json=body).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
