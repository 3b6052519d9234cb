"""cascade: which samples escalate, which stage decided, and how the verdict reports it."""

from __future__ import annotations

import pytest

from guardrail import Guard, load_policy
from guardrail.classifiers.cascade import CascadeClassifier
from guardrail.errors import ConfigError
from guardrail.policy import ClassifierSpec
from guardrail.taxonomy import load_taxonomy
from guardrail.testing import FakeClassifier
from guardrail.types import Sample

MLC = load_taxonomy("mlcommons")


def _options(**changes: object) -> CascadeClassifier.Options:
    base: dict[str, object] = {"first": {"name": "fake"}, "second": {"name": "fake"}}
    return CascadeClassifier.Options.model_validate({**base, **changes})


@pytest.fixture
def stages() -> tuple[FakeClassifier, FakeClassifier]:
    first = FakeClassifier(
        by_substring={
            "unsure": {"unsafe": 0.5},
            "bomb": {"unsafe": 0.95, "categories": {"indiscriminate_weapons": 0.95}},
        }
    )
    second = FakeClassifier(unsafe=0.05, by_substring={"unsure": {"unsafe": 0.9}})
    return first, second


def test_only_uncertain_samples_escalate(stages):
    first, second = stages
    cascade = CascadeClassifier(_options(), taxonomy=MLC, first=first, second=second)
    samples = [Sample("hello", language="en"), Sample("unsure text", language="en"),
               Sample("a bomb", language="en")]  # fmt: skip
    scores = cascade.score(samples)
    assert second.texts == ["unsure text"]
    assert [s.stage for s in scores] == ["first:fake", "second:fake", "first:fake"]
    assert scores[1].unsafe == 0.9
    assert scores[1].notes == ("escalated: first-stage score 0.500 in [0.2, 0.8)",)
    assert scores[2].categories == {"indiscriminate_weapons": 0.95}


def test_uncovered_languages_escalate(stages):
    first, second = stages
    cascade = CascadeClassifier(
        _options(languages=["en", "zh-CN"]), taxonomy=MLC, first=first, second=second
    )
    scores = cascade.score([Sample("hola", language="es"), Sample("你好", language="zh"),
                            Sample("???")])  # fmt: skip
    assert second.texts == ["hola", "???"]
    assert [s.stage for s in scores] == ["second:fake", "first:fake", "second:fake"]
    assert "language 'es' not covered" in scores[0].notes[0]


def test_second_stage_is_built_only_when_needed():
    cascade = CascadeClassifier(_options(), taxonomy=MLC)
    cascade.score([Sample("hello")])
    assert cascade._second is None
    escalating = CascadeClassifier(
        _options(first={"name": "fake", "options": {"unsafe": 0.5}}), taxonomy=MLC
    )
    assert escalating.score([Sample("hello")])[0].stage == "second:fake"
    assert escalating._second is not None


def test_verdict_records_the_deciding_stage(tmp_path):
    policy = tmp_path / "cascade.yaml"
    policy.write_text(
        "name: c\nclassifier:\n  name: cascade\n  options:\n"
        "    first: {name: fake, options: {by_substring: {maybe: {unsafe: 0.5}}}}\n"
        "    second: {name: fake, options: {unsafe: 0.95}}\n"
        "thresholds:\n  prompt:\n    unsafe: {flag_at: 0.5, block_at: 0.8}\n"
    )
    guard = Guard(load_policy(policy))
    blocked = guard.check_prompt("maybe dangerous")
    assert blocked.blocked
    assert blocked.decided_by == ("threshold", "stage:second:fake")
    assert guard.check_prompt("hello there").decided_by == ()


def test_stage_options_are_validated_when_the_policy_loads():
    # Inside the Options model the ConfigError surfaces as a validation error (a ValueError);
    # load_policy turns that into a ConfigError naming the file.
    with pytest.raises(ValueError, match="no_such_option"):
        _options(second={"name": "fake", "options": {"no_such_option": 1}})
    with pytest.raises(ValueError, match="no-such-backend"):
        _options(first={"name": "no-such-backend"})
    with pytest.raises(ValueError, match="escalate_from"):
        _options(escalate_from=0.9, escalate_below=0.1)


def test_bad_stage_in_a_policy_file_is_a_config_error(tmp_path):
    policy = tmp_path / "bad.yaml"
    policy.write_text(
        "name: c\nclassifier:\n  name: cascade\n  options:\n"
        "    first: {name: fake}\n    second: {name: fake, options: {typo: 1}}\n"
    )
    with pytest.raises(ConfigError, match="typo"):
        load_policy(policy)


def test_example_policies_validate_without_downloading():
    for name in ["crest-base", "polyguard", "llama-guard-3", "qwen3guard", "cascade"]:
        policy = load_policy(name)
        assert policy.description
    spec = load_policy("cascade").classifier
    assert isinstance(spec, ClassifierSpec) and spec.name == "cascade"
