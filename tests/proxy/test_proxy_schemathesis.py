"""Schemathesis against the app's OpenAPI schema: generated (valid and invalid) requests never
get a 5xx, except 502/504 for upstream faults, and every error is in OpenAI's shape.

The proxy runs over real HTTP in front of the fake upstream, with the fake classifier.
Example counts are bounded so the whole run stays well under a minute.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

from tests.fake_upstream import FakeUpstream

MAX_EXAMPLES = 30
UPSTREAM_FAULT_CODES = {"upstream_invalid", "upstream_unreachable", "upstream_timeout"}


def _check(case: Any, response: Any, problems: list[str]) -> None:
    status = response.status_code
    label = f"{case.method} {case.path} body={str(case.body)[:200]!r} -> {status}"
    if status >= 400 and case.path != "/metrics":
        # /v1/messages answers in Anthropic's error shape, everything else in OpenAI's.
        anthropic = case.path == "/v1/messages"
        try:
            error = response.json()["error"]
            if anthropic:
                assert response.json()["type"] == "error"
            assert set(error) >= (
                {"message", "type"} if anthropic else {"message", "type", "param", "code"}
            )
        except (ValueError, KeyError, TypeError, AssertionError):
            shape = "Anthropic's" if anthropic else "OpenAI's"
            problems.append(f"{label}: error not in {shape} shape: {response.text[:200]}")
            return
        if status in (502, 504) and error["code"] not in UPSTREAM_FAULT_CODES:
            problems.append(f"{label}: {status} without an upstream fault: {error}")
    if status >= 500 and status not in (502, 504):
        problems.append(f"{label}: server error {response.text[:200]}")


def test_generated_requests_never_get_a_server_error(make_proxy, fake_upstream: FakeUpstream):
    base = make_proxy(anthropic_upstream_url=fake_upstream.base_url)
    root = base.removesuffix("/v1")
    schema = schemathesis.openapi.from_url(f"{root}/openapi.json")
    problems: list[str] = []
    calls = 0
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/moderations",
        "/v1/embeddings",
        "/v1/responses",
        "/v1/messages",
        "/v1/models",
    }
    for operation in operations:
        for mode in GenerationMode:
            if mode is GenerationMode.NEGATIVE and operation.method.upper() == "GET":
                continue  # nothing in these requests can be made invalid

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any) -> None:
                nonlocal calls
                calls += 1
                _check(case, case.call(base_url=root, timeout=15), problems)

            run()
    print(f"schemathesis: {calls} requests")
    assert calls >= MAX_EXAMPLES  # the run really sent requests
    assert not problems, "\n".join(problems[:20])
