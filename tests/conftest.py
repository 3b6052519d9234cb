"""Shared fixtures: the scripted FakeClassifier, policy files, plugin isolation."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from guardrail import Guard, load_policy, registry
from guardrail.testing import FakeClassifier
from tests.fake_upstream import FakeUpstream

FIXTURES = Path(__file__).parent / "fixtures"
POLICIES = FIXTURES / "policies"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# CI (CI=true) runs the property tests derandomised, so a run is repeatable; local runs explore
# new examples each time and are where new counterexamples turn up.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture
def fake() -> FakeClassifier:
    """A fake classifier that scores everything safe unless told otherwise."""
    return FakeClassifier(
        by_substring={
            "BLOCKME": {"unsafe": 0.95, "categories": {"violent_crimes": 0.95}},
            "FLAGME": {"unsafe": 0.6, "categories": {"hate": 0.6}},
        }
    )


@pytest.fixture
def fake_guard(fake: FakeClassifier) -> Guard:
    """A guard over the `basic` fixture policy and the fake classifier."""
    return Guard(load_policy(POLICIES / "basic.yaml"), classifier=fake)


@pytest.fixture
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run a test against a copy of the registry, with entry points re-scanned."""
    saved = dict(registry._registry)
    registry.reset_plugins()
    yield
    registry._registry.clear()
    registry._registry.update(saved)
    registry.reset_plugins()


@pytest.fixture
def fake_upstream() -> Iterator[FakeUpstream]:
    """A scripted OpenAI-compatible server on 127.0.0.1, stopped after the test."""
    with FakeUpstream() as up:
        yield up
