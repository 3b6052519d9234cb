"""Thresholds for categories the classifier does not score are refused, with its categories."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from guardrail import Guard, load_policy
from guardrail.classifiers.cascade import CascadeClassifier
from guardrail.classifiers.hub.hf_sequence import HFSequenceClassifier
from guardrail.cli import cli
from guardrail.errors import ConfigError
from guardrail.policy import ClassifierSpec, list_policies
from guardrail.registry import scored_categories
from guardrail.taxonomy import load_taxonomy
from guardrail.testing import FakeClassifier
from tests.conftest import POLICIES

MLC = load_taxonomy("mlcommons")
UNTRAINED = ("sex_related_crimes", "defamation", "elections", "code_interpreter_abuse")

EMBEDDED_POLICY = """
name: t
classifier: {name: embedded}
thresholds:
  prompt:
    default_category: {flag_at: 0.5}
    categories:
      hate: {flag_at: 0.5}
"""


def _write(tmp_path, extra: str = "", categories: str = ""):
    path = tmp_path / "p.yaml"
    path.write_text(EMBEDDED_POLICY + categories + extra)
    return path


@pytest.mark.parametrize("category", UNTRAINED)
def test_embedded_policy_with_an_unscored_category_is_refused(tmp_path, category):
    path = _write(tmp_path, categories=f"      {category}: {{block_at: 0.5}}\n")
    with pytest.raises(ConfigError) as info:
        load_policy(path)
    message = str(info.value)
    assert f"does not score {category!r}" in message and "thresholds.prompt.categories" in message
    assert "it scores: " in message and "hate" in message and "jailbreak" in message
    assert "elections" not in message.split("it scores: ")[1]


def test_language_overrides_are_checked_and_default_category_is_not(tmp_path):
    load_policy(_write(tmp_path))  # default_category applies to whatever is scored
    override = "language_overrides:\n  - {languages: [de], response: {categories: {elections: {flag_at: 0.1}}}}\n"
    with pytest.raises(
        ConfigError, match=r"language_overrides\.0\.response\.categories\.elections"
    ):
        load_policy(_write(tmp_path, extra=override))


def test_every_shipped_policy_still_loads():
    for name in list_policies():
        load_policy(name)


def test_embedded_scores_its_trained_heads_only():
    scored = scored_categories(ClassifierSpec(name="embedded"), MLC)
    assert scored is not None and {"hate", "jailbreak", "prompt_injection"} <= scored
    assert not set(UNTRAINED) & scored
    assert "unsafe" not in scored and "refusal" not in scored


def test_guard_refuses_a_classifier_that_does_not_score_a_threshold():
    policy = load_policy(POLICIES / "basic.yaml")  # thresholds for hate and jailbreak
    narrow = FakeClassifier()
    narrow.scored_categories = frozenset({"hate"})  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="does not score 'jailbreak'.*it scores: hate"):
        Guard(policy, classifier=narrow)
    Guard(policy, classifier=FakeClassifier())  # no scored_categories: unknown, not checked


def test_hf_sequence_and_cascade_categories_come_from_options():
    options = HFSequenceClassifier.Options(
        model="m", label_map={"LABEL_0": "safe", "LABEL_1": ["jailbreak", "prompt_injection"]}
    )
    assert HFSequenceClassifier.scored_categories_for(options, MLC) == {
        "jailbreak",
        "prompt_injection",
    }
    assert (
        HFSequenceClassifier.scored_categories_for(HFSequenceClassifier.Options(model="m"), MLC)
        == frozenset()
    )
    cascade = CascadeClassifier.Options.model_validate(
        {"first": {"name": "embedded"},
         "second": {"name": "hf-sequence", "options": {"model": "m", "label_map": {"x": "elections"}}}}
    )  # fmt: skip
    union = CascadeClassifier.scored_categories_for(cascade, MLC)
    assert union is not None and {"hate", "elections"} <= union
    unknown = cascade.model_copy(update={"second": ClassifierSpec(name="fake")})
    assert CascadeClassifier.scored_categories_for(unknown, MLC) is None


def test_cli_exits_2_with_the_message_not_a_traceback(tmp_path):
    path = _write(tmp_path, categories="      elections: {block_at: 0.5}\n")
    result = CliRunner().invoke(cli, ["check", "hello", "--policy", str(path)])
    assert result.exit_code == 2, result.output
    assert "does not score 'elections'" in result.output and "Traceback" not in result.output
    # `validate` reports an invalid policy as it always has: INVALID and exit 1.
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 1 and "does not score 'elections'" in result.output
