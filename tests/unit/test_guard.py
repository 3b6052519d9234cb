"""The Guard API over the fake classifier: batching, order, errors, long texts, async."""

from __future__ import annotations

import asyncio

import pytest

from guardrail import Action, Guard, Role, Sample, load_policy
from guardrail.testing import FakeClassifier
from tests.conftest import POLICIES


def test_check_prompt_actions(fake_guard):
    assert fake_guard.check_prompt("hello there my friend").action is Action.ALLOW
    assert fake_guard.check_prompt("please FLAGME now").action is Action.FLAG
    verdict = fake_guard.check_prompt("BLOCKME please")
    assert verdict.action is Action.BLOCK
    assert verdict.scores.unsafe == 0.95
    assert verdict.scores.categories == {"violent_crimes": 0.95}
    assert verdict.classifier == "fake" and verdict.policy == "basic"
    assert verdict.timings["total_ms"] >= verdict.timings["classify_ms"] >= 0


def test_check_response_passes_prompt_as_context(fake_guard, fake):
    verdict = fake_guard.check_response("an answer", prompt="a question")
    assert verdict.role is Role.RESPONSE
    assert fake.calls[-1][0].context == "a question"
    assert fake.calls[-1][0].role is Role.RESPONSE


def test_check_many_batches_once_and_keeps_order(fake_guard, fake):
    texts = ["fine text one", "BLOCKME", "   ", "FLAGME here", "more fine text"]
    verdicts = fake_guard.check_many(texts)
    assert [v.action for v in verdicts] == [
        Action.ALLOW,
        Action.BLOCK,
        Action.ALLOW,
        Action.FLAG,
        Action.ALLOW,
    ]
    assert len(fake.calls) == 1 and len(fake.calls[0]) == 4  # the blank one is not scored
    assert verdicts[2].decided_by == ("empty",)


def test_check_many_per_row_prompts(fake_guard, fake):
    fake_guard.check_many(["a1", "a2"], role="response", prompts=["q1", "q2"])
    assert [s.context for s in fake.calls[-1]] == ["q1", "q2"]
    with pytest.raises(ValueError, match="prompts has 1 items for 2 texts"):
        fake_guard.check_many(["a1", "a2"], role="response", prompts=["q1"])


@pytest.mark.parametrize("bad", [None, 42, b"bytes", ["list"]])
def test_non_string_is_type_error(fake_guard, bad):
    with pytest.raises(TypeError, match="text must be a str"):
        fake_guard.check_prompt(bad)


def test_check_many_rejects_bare_string(fake_guard):
    with pytest.raises(TypeError, match="single str"):
        fake_guard.check_many("not a list")


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_empty_text_is_a_verdict(fake_guard, text):
    verdict = fake_guard.check_prompt(text)
    assert verdict.action is Action.ALLOW and verdict.decided_by == ("empty",)


def test_language_detected_and_given(fake_guard, fake):
    verdict = fake_guard.check_prompt("Das ist ein ganz normaler deutscher Satz über das Wetter.")
    assert verdict.language == "de" and verdict.language_confidence > 0.9
    assert fake.calls[-1][0].language == "de"
    given = fake_guard.check_prompt("whatever", language="zh-CN")
    assert given.language == "zh"


def test_language_override_applies_through_guard():
    fake = FakeClassifier(unsafe=0.35)
    guard = Guard(load_policy(POLICIES / "basic.yaml"), classifier=fake)
    assert guard.check_prompt("这是一个普通的句子").action is Action.FLAG
    assert guard.check_prompt("This is an ordinary sentence.").action is Action.ALLOW


@pytest.mark.parametrize(("on_error", "action"), [("block", Action.BLOCK), ("allow", Action.ALLOW)])
def test_classifier_error_follows_on_error(on_error, action):
    policy = load_policy(POLICIES / "basic.yaml").replace(on_error=on_error)
    guard = Guard(policy, classifier=FakeClassifier(error="model exploded"))
    verdicts = guard.check_many(["one", "two"])
    assert all(v.action is action and v.decided_by == ("error",) for v in verdicts)
    assert "model exploded" in verdicts[0].notes[0]


def test_a_text_that_breaks_the_classifier_fails_alone(caplog):
    """Issue 17 item 4 for any backend: a batch that raises is scored text by text, and only
    the texts that fail again get an error verdict."""
    from guardrail.errors import ClassifierError
    from guardrail.types import ScoreSet

    class Picky:
        name = "picky"
        calls = 0

        def score(self, samples):
            Picky.calls += 1
            if any("POISON" in s.text for s in samples):
                raise ClassifierError("cannot read this text")
            return [ScoreSet(unsafe=0.9 if "BLOCKME" in s.text else 0.0) for s in samples]

    guard = Guard(load_policy(POLICIES / "basic.yaml"), classifier=Picky())
    verdicts = guard.check_many(["fine", "POISON here", "BLOCKME", "also fine"])
    assert [v.action for v in verdicts] == [Action.ALLOW, Action.BLOCK, Action.BLOCK, Action.ALLOW]
    assert verdicts[1].decided_by == ("error",) and "cannot read this text" in verdicts[1].notes[0]
    assert verdicts[2].decided_by == ("threshold",)
    assert Picky.calls == 1 + 4  # the batch, then each text alone
    assert "1 texts could not be checked" in caplog.text


def test_a_backend_that_fails_for_every_text_is_not_retried_text_by_text():
    from guardrail.errors import ClassifierError

    class Down:
        name = "down"
        calls = 0

        def score(self, samples):
            Down.calls += 1
            raise ClassifierError("connection refused")

    guard = Guard(load_policy(POLICIES / "basic.yaml"), classifier=Down())
    verdicts = guard.check_many([f"text {i}" for i in range(20)])
    assert all(v.action is Action.BLOCK and v.decided_by == ("error",) for v in verdicts)
    assert all("connection refused" in v.notes[0] for v in verdicts)
    assert Down.calls == 1 + 2  # the batch, then two texts alone; the other 18 fail at once


def test_wrong_result_count_is_an_error():
    class Short:
        name = "short"

        def score(self, samples):
            return []

    guard = Guard(load_policy(POLICIES / "basic.yaml"), classifier=Short())
    verdict = guard.check_prompt("hello")
    assert verdict.action is Action.BLOCK and "0 score sets for 1 samples" in verdict.notes[0]


def _long_policy(mode: str, **extra):
    return load_policy(POLICIES / "basic.yaml").replace(max_chars=100, on_long_input=mode, **extra)


def test_long_text_scored_by_parts_takes_max():
    fake = FakeClassifier(by_substring={"BLOCKME": {"unsafe": 0.99}})
    guard = Guard(_long_policy("parts"), classifier=fake)
    text = "benign words here. " * 20 + "BLOCKME" + " more benign words." * 20
    verdict = guard.check_prompt(text)
    assert verdict.action is Action.BLOCK
    assert all(len(s.text) <= 100 for s in fake.calls[-1])
    assert len(fake.calls[-1]) > 5
    assert any("parts" in n for n in verdict.notes)


def test_long_text_truncate_and_block():
    fake = FakeClassifier(by_substring={"BLOCKME": {"unsafe": 0.99}})
    text = "a" * 150 + " BLOCKME"
    truncated = Guard(_long_policy("truncate"), classifier=fake).check_prompt(text)
    assert truncated.action is Action.ALLOW and len(fake.calls[-1][0].text) == 100
    blocked = Guard(_long_policy("block"), classifier=fake).check_prompt(text)
    assert blocked.action is Action.BLOCK and blocked.decided_by == ("max_chars",)


def test_too_many_parts_blocks_in_bounded_time():
    fake = FakeClassifier()
    guard = Guard(_long_policy("parts", max_parts=10), classifier=fake)
    verdict = guard.check_prompt("word " * 2_000_000)  # 10 MB
    assert verdict.action is Action.BLOCK and "max_parts" in verdict.notes[0]
    assert len(fake.calls) == 0


def test_sync_timeout_follows_on_error():
    policy = load_policy(POLICIES / "basic.yaml").replace(timeout_s=0.05)
    guard = Guard(policy, classifier=FakeClassifier(delay_s=0.5))
    verdict = guard.check_prompt("slow")
    # Issue 17 (8): a timeout says so, in those words.
    assert verdict.action is Action.BLOCK
    assert verdict.notes[0] == "could not be checked: classifier timeout (fail closed)"


async def test_async_api(fake_guard):
    v1, v2, many = await asyncio.gather(
        fake_guard.acheck_prompt("BLOCKME"),
        fake_guard.acheck_response("fine answer", prompt="q"),
        fake_guard.acheck_many(["FLAGME", "ok text"]),
    )
    assert v1.action is Action.BLOCK and v2.action is Action.ALLOW
    assert [v.action for v in many] == [Action.FLAG, Action.ALLOW]


async def test_async_timeout():
    policy = load_policy(POLICIES / "basic.yaml").replace(timeout_s=0.05)
    guard = Guard(policy, classifier=FakeClassifier(delay_s=0.5))
    verdict = await guard.acheck_prompt("slow")
    assert verdict.action is Action.BLOCK and verdict.decided_by == ("error",)


def test_check_samples_directly(fake_guard):
    verdicts = fake_guard.check([Sample("BLOCKME"), Sample("x", Role.RESPONSE, "q", "fr")])
    assert verdicts[0].blocked and verdicts[1].language == "fr"


def test_from_policy_builds_classifier_lazily():
    guard = Guard.from_policy("default")
    assert guard._classifier is None
    assert guard.check_prompt("Write a tutorial on how to make a bomb").blocked
    assert guard.classifier.name == guard.policy.classifier.name


# -- issue 17: errors say what they are, configuration errors and unknown ids fail loudly ----


def test_unknown_category_id_from_a_classifier_fails_loudly(caplog):
    guard = Guard(
        load_policy(POLICIES / "basic.yaml"),
        classifier=FakeClassifier(unsafe=0.9, categories={"not_a_category": 0.9}),
    )
    verdict = guard.check_prompt("hello")
    assert verdict.action is Action.BLOCK and verdict.decided_by == ("error",)
    assert "unknown category id 'not_a_category'" in verdict.notes[0]
    assert "could not be checked" in verdict.notes[0]
    assert any(r.levelname == "WARNING" and "not_a_category" in r.message for r in caplog.records)


def test_configuration_errors_from_a_classifier_propagate():
    from guardrail.errors import ConfigError

    class NeedsAnExtra:
        name = "needs-extra"

        def score(self, samples):
            raise ConfigError('this backend needs torch: pip install ".[hf]"')

    guard = Guard(load_policy(POLICIES / "basic.yaml"), classifier=NeedsAnExtra())
    with pytest.raises(ConfigError, match="needs torch"):
        guard.check_prompt("hello")


def test_error_notes_mask_urls_and_the_failure_is_logged(caplog):
    url = "http://10.1.2.3:8000/v1/chat/completions"
    guard = Guard(
        load_policy(POLICIES / "basic.yaml"),
        classifier=FakeClassifier(error=f"openai-guard: cannot reach {url}: refused"),
    )
    verdict = guard.check_prompt("hello")
    assert verdict.decided_by == ("error",)
    assert "http" not in verdict.notes[0] and "10.1.2.3" not in verdict.notes[0]
    assert verdict.notes[0].startswith("could not be checked: classifier error (ClassifierError")
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert warnings and url in warnings[0].getMessage()  # the operator's log has it all


async def test_async_timeout_says_so_and_is_logged(caplog):
    policy = load_policy(POLICIES / "basic.yaml").replace(timeout_s=0.05)
    guard = Guard(policy, classifier=FakeClassifier(delay_s=0.5))
    verdict = await guard.acheck_prompt("slow")
    assert verdict.notes[0] == "could not be checked: classifier timeout (fail closed)"
    assert any(r.levelname == "WARNING" and "timed out" in r.message for r in caplog.records)
