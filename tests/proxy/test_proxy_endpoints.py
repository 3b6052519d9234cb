"""Moderations, models, embeddings, the Responses API, unknown routes, health and metrics."""

from __future__ import annotations

import httpx
import openai
import pytest

from guardrail import Guard, load_policy
from guardrail.testing import FakeClassifier
from tests.conftest import POLICIES
from tests.fake_upstream import FakeUpstream, error_reply, responses_reply

OPENAI_CODES = {
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
}


def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key="sk-caller", max_retries=0, timeout=20)


@pytest.fixture
def category_guard() -> Guard:
    """Basic policy, with a fake that scores S1 (violent crimes) high for 'VIOLENT'."""
    fake = FakeClassifier(
        by_substring={
            "VIOLENT": {"unsafe": 0.7, "categories": {"violent_crimes": 0.7, "hate": 0.1}},
            "HATEFUL": {"unsafe": 0.95, "categories": {"hate": 0.9}},
        }
    )
    return Guard(load_policy(POLICIES / "basic.yaml"), classifier=fake)


def test_moderations_in_openai_shape(make_proxy, category_guard: Guard, fake_upstream):
    base = make_proxy(guard=category_guard)
    result = client(base).moderations.create(input=["a kind note", "VIOLENT text", "HATEFUL"])
    assert len(result.results) == 3
    safe, violent, hateful = result.results
    for r in result.results:
        assert set(r.model_dump(by_alias=True)["categories"]) == OPENAI_CODES
        assert set(r.model_dump(by_alias=True)["category_scores"]) == OPENAI_CODES
        applied = r.model_dump(by_alias=True)["category_applied_input_types"]
        # categories no local category maps to were not scored at all: no input type applied
        unscored = {"harassment/threatening", "hate/threatening", "violence/graphic"}
        assert applied == {c: [] if c in unscored else ["text"] for c in OPENAI_CODES}
    assert not safe.flagged and not any(safe.model_dump(by_alias=True)["categories"].values())
    # violent_crimes maps to violence and illicit/violent (max of the sources)
    scores = violent.model_dump(by_alias=True)["category_scores"]
    assert scores["violence"] == pytest.approx(0.7)
    assert scores["illicit/violent"] == pytest.approx(0.7)
    assert scores["hate"] == pytest.approx(0.1)
    assert scores["self-harm"] == 0.0
    assert violent.flagged  # unsafe 0.7 >= flag_at 0.5
    assert hateful.flagged and hateful.categories.hate  # the hate threshold fired
    assert not hateful.categories.violence
    assert fake_upstream.requests == []  # served locally


def test_moderations_single_string_and_parts(make_proxy, category_guard: Guard):
    base = make_proxy(guard=category_guard)
    one = httpx.post(f"{base}/moderations", json={"input": "HATEFUL"}).json()
    assert len(one["results"]) == 1 and one["results"][0]["flagged"] is True
    assert one["id"].startswith("modr-")
    parts = [{"type": "text", "text": "hello"}, {"type": "text", "text": "HATEFUL"}]
    r = httpx.post(f"{base}/moderations", json={"input": parts, "model": "omni-moderation-latest"})
    assert r.status_code == 200
    assert len(r.json()["results"]) == 1 and r.json()["results"][0]["flagged"]
    assert r.json()["model"] == "omni-moderation-latest"
    image = [{"type": "image_url", "image_url": {"url": "https://example.invalid/x.png"}}]
    r = httpx.post(f"{base}/moderations", json={"input": image})
    assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_content"
    assert "no multimodal classifier configured" in r.json()["error"]["message"]
    assert r.json()["error"]["param"] == "input.0"
    # with the real client: an image next to text is refused too, never half-scored
    mixed = [{"type": "text", "text": "hello"}, *image]
    with pytest.raises(openai.BadRequestError, match="multimodal"):
        client(base).moderations.create(input=mixed)


def test_models_passed_through(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy()
    models = client(base).models.list()
    assert [m.id for m in models.data] == ["fake-model"]
    assert fake_upstream.requests[-1].path == "/v1/models"


def test_models_upstream_error_is_returned(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy()
    fake_upstream.script("/v1/models", error_reply(401, "bad upstream key", code="invalid_api_key"))
    with pytest.raises(openai.AuthenticationError) as info:
        client(base).models.list()
    assert info.value.response.json()["error"]["message"] == "bad upstream key"


def test_embeddings_input_is_moderated(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy()
    c = client(base)
    ok = c.embeddings.create(model="e", input=["hello", "world"])
    assert len(ok.data) >= 1
    with pytest.raises(openai.BadRequestError) as info:
        c.embeddings.create(model="e", input=["hello", "BLOCKME"])
    assert info.value.code == "content_filter"
    r = httpx.post(f"{base}/embeddings", json={"model": "e", "input": [[1, 2], [3]]})
    assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_content"
    assert len(fake_upstream.calls("/v1/embeddings")) == 1


def test_responses_api_is_moderated(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy()
    c = client(base)
    fake_upstream.script(
        "/v1/responses", responses_reply("a fine answer"), responses_reply("BLOCKME answer")
    )
    assert c.responses.create(model="m", input="hello").output_text == "a fine answer"
    blocked = c.responses.create(model="m", input="hello")
    assert blocked.output_text == "Sorry, I can't help with that."
    assert blocked.incomplete_details.reason == "content_filter"
    with pytest.raises(openai.BadRequestError):
        c.responses.create(
            model="m",
            input=[{"role": "user", "content": [{"type": "input_text", "text": "BLOCKME"}]}],
        )
    with pytest.raises(openai.BadRequestError):
        c.responses.create(model="m", input="fine", instructions="BLOCKME")
    assert len(fake_upstream.calls("/v1/responses")) == 2
    # streams are served too (moderated as they flow: tests/proxy/test_proxy_responses_stream.py)
    events = list(c.responses.create(model="m", input="hello", stream=True))
    assert events[-1].type == "response.completed"


def test_unknown_v1_routes_are_refused(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy()
    for method, path in [
        ("POST", "/audio/transcriptions"),
        ("POST", "/assistants"),
        ("GET", "/files"),
        ("DELETE", "/responses/resp_1"),
    ]:
        r = httpx.request(method, f"{base}{path}", json={"input": "BLOCKME"})
        assert r.status_code == 404, path
        assert r.json()["error"]["code"] == "unsupported_route"
    r = httpx.get(f"{base}/chat/completions")
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"
    r = httpx.get(base.removesuffix("/v1") + "/nope")
    assert r.status_code == 404 and "error" in r.json()
    assert fake_upstream.requests == []


def test_health_ready_and_metrics(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy()
    root = base.removesuffix("/v1")
    assert httpx.get(f"{root}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{root}/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "classifier": "loaded", "upstream": "reachable"}
    c = client(base)
    c.chat.completions.create(model="m", messages=[{"role": "user", "content": "FLAGME"}])
    with pytest.raises(openai.BadRequestError):
        c.chat.completions.create(model="m", messages=[{"role": "user", "content": "BLOCKME"}])
    fake_upstream.script("/v1/chat/completions", error_reply(500, "boom"))
    with pytest.raises(openai.InternalServerError):
        c.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    r = httpx.get(f"{root}/metrics")
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'guardrail_proxy_requests_total{route="/v1/chat/completions",status="200"} 1.0' in text
    assert 'guardrail_proxy_requests_total{route="/v1/chat/completions",status="400"} 1.0' in text
    assert 'guardrail_proxy_verdicts_total{action="flag",key="anonymous",role="prompt"} 1.0' in text
    assert (
        'guardrail_proxy_verdicts_total{action="block",key="anonymous",role="prompt"} 1.0' in text
    )
    assert (
        'guardrail_proxy_verdict_categories_total{action="flag",category="hate",'
        'key="anonymous",role="prompt"} 1.0' in text
    )
    assert 'guardrail_proxy_classification_seconds_count{role="prompt"} 3.0' in text
    assert 'guardrail_proxy_classification_seconds_count{role="response"} 1.0' in text
    assert 'guardrail_proxy_upstream_seconds_count{route="/v1/chat/completions"} 2.0' in text
    assert (
        'guardrail_proxy_upstream_errors_total{kind="5xx",route="/v1/chat/completions"} 1.0' in text
    )


def test_readyz_reports_an_unreachable_upstream(make_proxy):
    from tests.proxy.conftest import closed_port

    base = make_proxy(upstream_url=f"http://127.0.0.1:{closed_port()}/v1")
    r = httpx.get(base.removesuffix("/v1") + "/readyz")
    assert r.status_code == 503
    assert r.json()["upstream"] == "unreachable"
