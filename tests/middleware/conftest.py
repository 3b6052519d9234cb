"""Fixtures for the middleware tests: a guard over the fake classifier, real openai clients
talking to the fake upstream over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from openai import AsyncOpenAI, OpenAI

from guardrail import Guard, Verdict, load_policy
from guardrail.testing import FakeClassifier
from tests.conftest import POLICIES
from tests.fake_upstream import FakeUpstream

BLOCK = "BLOCKME"
FLAG = "FLAGME"


@pytest.fixture
def classifier() -> FakeClassifier:
    """Scores texts containing BLOCKME as 0.99 and FLAGME as 0.7 (basic.yaml: block / flag)."""
    return FakeClassifier(
        by_substring={
            BLOCK: {"unsafe": 0.99, "categories": {"violent_crimes": 0.99}},
            FLAG: {"unsafe": 0.7},
        }
    )


@pytest.fixture
def guard(classifier: FakeClassifier) -> Guard:
    return Guard(load_policy(POLICIES / "basic.yaml"), classifier=classifier)


class Seen(list[tuple[str, str]]):
    """Records on_verdict calls as (action, stage)."""

    def __call__(self, verdict: Verdict, stage: str) -> None:
        self.append((verdict.action.value, stage))


@pytest.fixture
def seen() -> Seen:
    return Seen()


@pytest.fixture
def openai_client(fake_upstream: FakeUpstream) -> Iterator[OpenAI]:
    client = OpenAI(base_url=fake_upstream.base_url, api_key="sk-test", max_retries=0)
    yield client
    client.close()


@pytest.fixture
async def async_openai_client(fake_upstream: FakeUpstream) -> AsyncIterator[AsyncOpenAI]:
    client = AsyncOpenAI(base_url=fake_upstream.base_url, api_key="sk-test", max_retries=0)
    yield client
    await client.close()


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]
