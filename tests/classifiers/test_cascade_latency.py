"""cascade with max_latency_ms: a slow second stage falls back to the first stage's scores."""

from __future__ import annotations

import time

import pytest

from guardrail import Guard, load_policy
from guardrail.classifiers.cascade import CascadeClassifier
from guardrail.taxonomy import load_taxonomy
from guardrail.testing import FakeClassifier
from guardrail.types import Sample

MLC = load_taxonomy("mlcommons")


def _cascade(delay_s: float, budget_ms: float | None) -> CascadeClassifier:
    options = CascadeClassifier.Options.model_validate(
        {"first": {"name": "fake"}, "second": {"name": "fake"}, "max_latency_ms": budget_ms}
    )
    first = FakeClassifier(by_substring={"unsure": {"unsafe": 0.5}})
    second = FakeClassifier(unsafe=0.95, delay_s=delay_s)
    return CascadeClassifier(options, taxonomy=MLC, first=first, second=second)


def test_overrun_falls_back_to_first_stage_and_says_so():
    cascade = _cascade(delay_s=0.5, budget_ms=50)
    started = time.perf_counter()
    scores = cascade.score([Sample("unsure text", language="en"), Sample("hi", language="en")])
    elapsed = time.perf_counter() - started
    assert elapsed < 0.4  # did not wait for the 0.5 s second stage
    assert scores[0].unsafe == 0.5
    assert scores[0].stage == "fallback:first:fake"
    assert "max_latency_ms=50" in scores[0].notes[0]
    assert scores[1].stage == "first:fake"


def test_second_stage_within_budget_decides():
    scores = _cascade(delay_s=0.0, budget_ms=5_000).score([Sample("unsure", language="en")])
    assert scores[0].stage == "second:fake" and scores[0].unsafe == 0.95


def test_budget_must_be_positive():
    with pytest.raises(ValueError, match="max_latency_ms"):
        CascadeClassifier.Options.model_validate(
            {"first": {"name": "fake"}, "second": {"name": "fake"}, "max_latency_ms": 0}
        )


def test_verdict_names_the_fallback(tmp_path):
    policy = tmp_path / "cascade.yaml"
    policy.write_text(
        "name: c\nclassifier:\n  name: cascade\n  options:\n"
        "    max_latency_ms: 30\n"
        "    first: {name: fake, options: {by_substring: {maybe: {unsafe: 0.6}}}}\n"
        "    second: {name: fake, options: {unsafe: 0.99, delay_s: 0.5}}\n"
        "thresholds:\n  prompt:\n    unsafe: {flag_at: 0.5, block_at: 0.8}\n"
    )
    verdict = Guard(load_policy(policy)).check_prompt("maybe dangerous")
    assert verdict.flagged  # the first stage's 0.6, not the second's 0.99
    assert verdict.decided_by == ("threshold", "stage:fallback:first:fake")
    assert any("did not answer within max_latency_ms=30" in n for n in verdict.notes)
