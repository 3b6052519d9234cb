"""A guard over the `redact` fixture policy: fake classifier, Presidio PII, detect-secrets."""

from __future__ import annotations

import pytest

from guardrail import Guard, load_policy
from guardrail.testing import FakeClassifier
from tests.conftest import POLICIES

AWS = "AKIAIOSFODNN7EXAMPLE"
CARD = "4111 1111 1111 1111"


@pytest.fixture
def redact_guard() -> Guard:
    classifier = FakeClassifier(by_substring={"BLOCKME": {"unsafe": 0.99}})
    return Guard(load_policy(POLICIES / "redact.yaml"), classifier=classifier)
