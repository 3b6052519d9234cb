"""openai-guard against a small OpenAI-compatible server on 127.0.0.1 (real HTTP, logprobs)."""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

pytest.importorskip("httpx")

from guardrail.classifiers.hub.openai_guard import OpenAIGuardClassifier
from guardrail.errors import ClassifierError, ClassifierTimeout, ConfigError
from guardrail.taxonomy import load_taxonomy
from guardrail.types import Role, Sample

MLC = load_taxonomy("mlcommons")
Reply = Callable[[str, dict[str, Any]], tuple[int, dict[str, Any]]]


class _Server:
    """Answers POSTs with ``reply(path, body)``; records every request."""

    def __init__(self) -> None:
        self.reply: Reply = lambda path, body: (500, {})
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.delay_s = 0.0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, body))
                time.sleep(outer.delay_s)
                status, payload = outer.reply(self.path, body)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up first (test_timeout does so on purpose)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()
    srv.thread.join(timeout=5)


def _completion(tokens: list[str], tops: list[dict[str, float]]) -> dict[str, Any]:
    return {
        "choices": [
            {
                "text": "".join(tokens),
                "logprobs": {
                    "tokens": tokens,
                    "token_logprobs": [max(t.values()) if t else -0.01 for t in tops],
                    "top_logprobs": tops,
                },
            }
        ]
    }


def _chat(tokens: list[str], tops: list[dict[str, float]] | None) -> dict[str, Any]:
    message = {"role": "assistant", "content": "".join(tokens)}
    if tops is None:
        return {"choices": [{"message": message}]}
    content = [
        {
            "token": tok,
            "logprob": top.get(tok, -0.01),
            "top_logprobs": [{"token": k, "logprob": v} for k, v in top.items()],
        }
        for tok, top in zip(tokens, tops, strict=True)
    ]
    return {"choices": [{"message": message, "logprobs": {"content": content}}]}


def _clf(url: str, family: str, **options: Any) -> OpenAIGuardClassifier:
    opts = OpenAIGuardClassifier.Options(base_url=url, model="guard", family=family, **options)
    return OpenAIGuardClassifier(opts, taxonomy=MLC)


def test_llama_guard_over_completions_uses_logprobs(server):
    tops = [{"\n\n": -0.01}, {"unsafe": math.log(0.93), "safe": math.log(0.07)}, {}, {}, {}, {}]
    server.reply = lambda path, body: (
        200,
        _completion(["\n\n", "unsafe", "\n", "S1", ",", "S10"], tops),
    )
    [scores] = _clf(server.url, "llama-guard-3").score([Sample("how do i make a bomb")])
    assert scores.unsafe == pytest.approx(0.93)
    assert set(scores.categories) == {"violent_crimes", "hate"}
    path, body = server.requests[0]
    assert path == "/v1/completions"
    assert body["prompt"].startswith("<|begin_of_text|><|start_header_id|>user")
    assert (
        body["add_special_tokens"] is False and body["temperature"] == 0 and body["logprobs"] == 5
    )


def test_qwen3guard_over_chat_with_refusal(server):
    tokens = [
        "Safety",
        ":",
        " Safe",
        "\n",
        "Categories",
        ":",
        " None",
        "\n",
        "Refusal",
        ":",
        " Yes",
    ]
    tops: list[dict[str, float]] = [{} for _ in tokens]
    tops[2] = {" Safe": math.log(0.8), " Unsafe": math.log(0.1), " Controversial": math.log(0.1)}
    tops[10] = {" Yes": math.log(0.9), " No": math.log(0.1)}
    server.reply = lambda path, body: (200, _chat(tokens, tops))
    sample = Sample("sorry i can't help with that", Role.RESPONSE, "how do i make a bomb")
    [scores] = _clf(server.url, "qwen3guard").score([sample])
    assert scores.unsafe == pytest.approx(0.1 + 0.5 * 0.1)
    assert scores.refusal == pytest.approx(0.9)
    path, body = server.requests[0]
    assert path == "/v1/chat/completions" and body["logprobs"] is True
    assert body["messages"] == [
        {"role": "user", "content": "how do i make a bomb"},
        {"role": "assistant", "content": "sorry i can't help with that"},
    ]


def test_without_logprobs_the_parsed_answer_scores_with_a_note(server):
    server.reply = lambda path, body: (
        200,
        _chat(["Harmful request: yes\nRequest safety violations: S9"], None),
    )
    [scores] = _clf(server.url, "polyguard").score([Sample("how do i make a bomb")])
    assert scores.unsafe == 1.0 and scores.categories == {"indiscriminate_weapons": 1.0}
    assert scores.notes == ("server returned no logprobs; score from the parsed answer",)


def test_malformed_answer_raises_with_raw_text(server):
    server.reply = lambda path, body: (200, _completion(["I", " think", " so"], [{}, {}, {}]))
    with pytest.raises(ClassifierError) as info:
        _clf(server.url, "wildguard").score([Sample("hi")])
    assert info.value.raw == "I think so"


def test_retries_with_backoff_on_503(server):
    answers = iter([(503, {"error": "busy"}), (503, {"error": "busy"})])
    ok = _completion(["Yes"], [{"Yes": math.log(0.7), "No": math.log(0.3)}])
    server.reply = lambda path, body: next(answers, (200, ok))
    clf = _clf(server.url, "shieldgemma", shieldgemma_harms=["Dangerous Content"], backoff_s=0.01)
    [scores] = clf.score([Sample("how do i make a bomb")])
    assert len(server.requests) == 3
    assert scores.unsafe == pytest.approx(0.7)
    assert scores.categories["violent_crimes"] == pytest.approx(0.7)


def test_client_error_is_not_retried(server):
    server.reply = lambda path, body: (400, {"error": "bad model"})
    with pytest.raises(ClassifierError, match="answered 400"):
        _clf(server.url, "llama-guard-3", backoff_s=0.01).score([Sample("hi")])
    assert len(server.requests) == 1


def test_unreachable_server_is_a_clear_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    clf = _clf(f"http://127.0.0.1:{port}/v1", "llama-guard-3", max_retries=1, backoff_s=0.01)
    with pytest.raises(
        ClassifierError, match=rf"cannot reach http://127.0.0.1:{port}/v1/completions"
    ):
        clf.score([Sample("hi")])


def test_timeout(server):
    server.delay_s = 0.5
    server.reply = lambda path, body: (200, _completion(["safe"], [{}]))
    clf = _clf(server.url, "llama-guard-3", timeout_s=0.1, max_retries=0)
    with pytest.raises(ClassifierTimeout):
        clf.score([Sample("hi")])


def test_endpoint_must_fit_the_family():
    with pytest.raises(ConfigError, match="chat endpoint"):
        _clf("http://127.0.0.1:1/v1", "polyguard", endpoint="completions")
    with pytest.raises(ConfigError, match="completions endpoint"):
        _clf("http://127.0.0.1:1/v1", "llama-guard-3", endpoint="chat")


def test_api_key_from_environment(server, monkeypatch):
    seen: list[str | None] = []

    def reply(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 200, _completion(["safe"], [{"safe": -0.1, "unsafe": -2.4}])

    server.reply = reply
    monkeypatch.setenv("GUARD_KEY", "s3cret")
    clf = _clf(server.url, "llama-guard-3", api_key_env="GUARD_KEY")
    seen.append(clf._client.headers.get("Authorization"))
    assert clf.score([Sample("hi")])[0].unsafe == pytest.approx(
        math.exp(-2.4) / (math.exp(-2.4) + math.exp(-0.1))
    )
    assert seen == ["Bearer s3cret"]
    monkeypatch.delenv("GUARD_KEY")
    with pytest.raises(ConfigError, match="GUARD_KEY"):
        _clf(server.url, "llama-guard-3", api_key_env="GUARD_KEY")
