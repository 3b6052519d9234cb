"""Coverage: whether a text's language is one the classifier covers, and what a policy does
outside it (``outside_coverage``), through the engine, the guard and the cascade."""

from __future__ import annotations

import json

import pytest

from guardrail import Action, Guard, load_policy
from guardrail.classifiers.cascade import CascadeClassifier
from guardrail.engine import evaluate
from guardrail.taxonomy import load_taxonomy
from guardrail.testing import FakeClassifier
from guardrail.types import Sample, ScoreSet, combined_coverage
from tests.conftest import POLICIES

MLC = load_taxonomy("mlcommons")
COVERED = {"en", "de"}


def _by_language(sample: Sample) -> ScoreSet:
    """A fake that covers English and German, and scores 'bomb' high."""
    lang = sample.language
    coverage = "unknown" if lang in (None, "und") else "covered" if lang in COVERED else "outside"
    unsafe = 0.95 if "bomb" in sample.text.lower() else 0.01
    return ScoreSet(unsafe=unsafe, language=lang, coverage=coverage, classifier="fake")


def _policy(outside: str = "score"):
    return load_policy(POLICIES / "basic.yaml").replace(outside_coverage=outside)


def test_combined_coverage_prefers_outside_then_covered_then_unknown():
    assert combined_coverage([None, None]) is None
    assert combined_coverage(["unknown", None]) == "unknown"
    assert combined_coverage(["unknown", "covered"]) == "covered"
    assert combined_coverage(["covered", "outside", "unknown"]) == "outside"


def test_policy_option_defaults_to_score_and_forbids_others():
    assert load_policy(POLICIES / "basic.yaml").outside_coverage == "score"
    with pytest.raises(Exception, match="outside_coverage"):
        _policy("allow")


@pytest.mark.parametrize(
    ("name", "expected"), [("default", "score"), ("strict", "flag"), ("permissive", "score")]
)
def test_shipped_policies_say_what_outside_coverage_does(name, expected):
    assert load_policy(name).outside_coverage == expected


@pytest.mark.parametrize(
    ("outside", "action", "decided"),
    [("score", Action.ALLOW, ()), ("flag", Action.FLAG, ("coverage:outside",)),
     ("block", Action.BLOCK, ("coverage:outside",))],
)  # fmt: skip
def test_engine_outside_coverage_is_a_floor(outside, action, decided):
    scores = ScoreSet(unsafe=0.01, language="vi", coverage="outside", classifier="fake")
    verdict = evaluate(_policy(outside), scores, text="xin chào")
    assert verdict.action is action and verdict.decided_by == decided
    assert verdict.coverage == "outside"
    if outside != "score":
        assert any("'vi' is outside the classifier's coverage" in n for n in verdict.notes)


def test_engine_outside_coverage_never_lowers_and_allowlist_still_allows():
    policy = _policy("flag")
    high = ScoreSet(unsafe=0.99, language="vi", coverage="outside")
    verdict = evaluate(policy, high, text="bom")
    assert verdict.action is Action.BLOCK and verdict.decided_by == ("threshold",)
    assert evaluate(policy, high, text="a harmless idiom").action is Action.ALLOW
    for coverage in ("covered", "unknown", None):
        low = ScoreSet(unsafe=0.01, language="en", coverage=coverage)
        assert evaluate(policy, low, text="hi").action is Action.ALLOW


def test_guard_carries_coverage_into_the_verdict():
    guard = Guard(_policy("flag"), classifier=FakeClassifier(fn=_by_language))
    vi, en, hi = guard.check_many(
        ["Xin chào, hôm nay bạn thế nào? Tôi muốn học nấu ăn.",
         "The weather is lovely today and we are going for a walk.", "hi"]
    )  # fmt: skip
    assert (vi.coverage, vi.action, vi.decided_by) == (
        "outside",
        Action.FLAG,
        ("coverage:outside",),
    )
    assert (en.coverage, en.action) == ("covered", Action.ALLOW)
    assert (hi.coverage, hi.language, hi.action) == ("unknown", None, Action.ALLOW)
    assert json.loads(vi.model_dump_json())["coverage"] == "outside"
    assert guard.check_prompt("").coverage is None  # not scored: nothing to say


def test_a_classifier_that_does_not_say_gives_none():
    guard = Guard(_policy("block"), classifier=FakeClassifier())
    verdict = guard.check_prompt("Xin chào, hôm nay bạn thế nào? Tôi muốn học nấu ăn.")
    assert verdict.coverage is None and verdict.action is Action.ALLOW


def test_cascade_escalates_outside_coverage_when_asked():
    first = FakeClassifier(fn=_by_language)
    second = FakeClassifier(unsafe=0.6)
    samples = [Sample("xin chào", language="vi"), Sample("hello there", language="en")]

    def cascade(**extra: object) -> CascadeClassifier:
        options = CascadeClassifier.Options.model_validate(
            {"first": {"name": "fake"}, "second": {"name": "fake"}, **extra}
        )
        return CascadeClassifier(options, taxonomy=MLC, first=first, second=second)

    plain = cascade().score(samples)
    assert [s.stage for s in plain] == ["first:fake", "first:fake"]
    assert plain[0].coverage == "outside"
    scored = cascade(escalate_outside_coverage=True).score(samples)
    assert [s.stage for s in scored] == ["second:fake", "first:fake"]
    assert scored[0].unsafe == 0.6
    assert "escalated: language 'vi' outside the first stage's coverage" in scored[0].notes
    # The verdict's coverage is the deciding stage's: the fake second stage does not say.
    assert scored[0].coverage is None and scored[1].coverage == "covered"


def test_cascade_policy_escalates_outside_coverage():
    options = load_policy("cascade").classifier.options
    assert options["escalate_outside_coverage"] is True
