"""The bad-input contract of the Python API (README, "Bad input"): a verdict or a typed error."""

from __future__ import annotations

import json
import time

import pytest

from guardrail import Action, Guard, Role, Sample, load_policy
from guardrail.language import detect_language
from guardrail.testing import FakeClassifier
from tests.conftest import POLICIES

TEN_MB = 10 * 1024 * 1024


@pytest.fixture
def guard() -> Guard:
    fake = FakeClassifier(by_substring={"kill": {"unsafe": 0.95}})
    return Guard(load_policy(POLICIES / "basic.yaml"), classifier=fake)


def _serialisable(verdict) -> dict:
    data = json.loads(verdict.model_dump_json())
    json.dumps(verdict.model_dump(mode="json"))
    return data


@pytest.mark.parametrize("text", ["", " ", "\n\t\r ", "\u3000\u00a0"])
async def test_empty_and_whitespace_allow_without_scoring(guard, text):
    for verdict in (
        guard.check_prompt(text),
        guard.check_response(text, prompt="q"),
        (await guard.acheck_prompt(text)),
    ):
        assert verdict.action is Action.ALLOW and verdict.decided_by == ("empty",)
    assert len(guard.classifier.calls) == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "text",
    [
        "\ud800",  # lone high surrogate
        "kill \udfff now",  # lone low surrogate next to a harmful word
        "\udce2\udc82\udcac",  # surrogate-escaped bytes (from os.fsdecode / argv)
        "a\x00b\x00kill",  # NUL bytes
        "\x00" * 100,
        "\ufeff\u200b\u202e",  # only invisible characters
        "\U0010ffff\ufffe\uffff",  # non-characters
    ],
)
def test_strange_code_points_get_a_serialisable_verdict(guard, text):
    verdict = guard.check_prompt(text)
    assert verdict.action in set(Action)
    assert _serialisable(verdict)["action"] == verdict.action.value
    assert ("kill" in text) is (verdict.action is Action.BLOCK)


def test_language_detection_survives_surrogates_and_nul():
    for text in ["\ud800", "hello \udfff world", "\x00\x00", "Grüße \ud83d aus Köln"]:
        code, confidence = detect_language(text)
        assert isinstance(code, str) and 0.0 <= confidence <= 1.0


def test_blocklist_note_with_surrogate_serialises():
    policy = load_policy(POLICIES / "basic.yaml").replace(blocklist={"patterns": ["x."]})
    verdict = Guard(policy, classifier=FakeClassifier()).check_prompt("x\ud800 y")
    assert verdict.decided_by == ("blocklist",)
    assert "\\ud800" in _serialisable(verdict)["notes"][0]  # escaped, never a raw surrogate


@pytest.mark.parametrize("bad", [None, 42, 4.2, b"kill", bytearray(b"x"), ["kill"], {"t": 1}])
def test_non_string_text_is_a_type_error(guard, bad):
    with pytest.raises(TypeError, match="text must be a str"):
        guard.check_prompt(bad)
    with pytest.raises(TypeError, match="text must be a str"):
        guard.check_response(bad)
    with pytest.raises(TypeError):
        guard.check_many([bad])


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda g: g.check_response("a", prompt=42), TypeError, "context must be a str"),
        (lambda g: g.check_prompt("a", language=42), TypeError, "language must be a str"),
        (lambda g: g.check_many(["a"], role="robot"), ValueError, "not a valid Role"),
        (lambda g: g.check_many("a bare str"), TypeError, "single str"),
        (lambda g: g.check_many(b"bytes"), TypeError, "single str"),
        (lambda g: g.check_many(None), TypeError, "not iterable"),
        (lambda g: g.check_many(["a", "b"], prompts=["q"]), ValueError, "prompts has 1"),
        (lambda g: g.check_many(["a"], languages=[1]), TypeError, "language must be a str"),
        (lambda g: g.check(["not a sample"]), TypeError, "expected a Sample"),
        (lambda g: g.check([Sample("a", role="robot")]), ValueError, "not a valid Role"),
    ],
)
def test_wrong_types_in_every_field_are_typed_errors(guard, call, error, match):
    with pytest.raises(error, match=match):
        call(guard)


async def test_async_wrong_types_are_the_same_typed_errors(guard):
    with pytest.raises(TypeError, match="text must be a str"):
        await guard.acheck_prompt(None)
    with pytest.raises(TypeError, match="single str"):
        await guard.acheck_many("a bare str")


def test_odd_but_valid_language_codes_give_verdicts(guard):
    for code in ["", "  ", "EN", "zh_TW", "xx-YY", "\ud800", "a" * 500]:
        verdict = guard.check_prompt("hello", language=code)
        assert verdict.action is Action.ALLOW
        _serialisable(verdict)


@pytest.mark.parametrize(
    ("mode", "action", "decided_by"),
    [("parts", Action.BLOCK, "max_chars"), ("block", Action.BLOCK, "max_chars")],
)
def test_ten_megabytes_is_decided_in_bounded_time(mode, action, decided_by):
    fake = FakeClassifier()
    policy = load_policy(POLICIES / "basic.yaml").replace(on_long_input=mode)
    started = time.monotonic()
    verdict = Guard(policy, classifier=fake).check_prompt("benign words " * (TEN_MB // 13))
    assert time.monotonic() - started < 60  # generous: a guard against hangs, not a benchmark
    assert verdict.action is action and verdict.decided_by == (decided_by,)
    assert len(fake.calls) == 0


def test_ten_megabytes_truncated_scores_one_window_plus_views():
    fake = FakeClassifier()
    policy = load_policy(POLICIES / "basic.yaml").replace(on_long_input="truncate")
    text = "k1ll " + "x" * TEN_MB  # one 10 MB token: no white space to cut at
    verdict = Guard(policy, classifier=fake).check_prompt(text)
    assert verdict.action is Action.ALLOW
    assert all(len(s.text) <= policy.max_chars for s in fake.calls[-1])
    assert len(fake.calls[-1]) <= 1 + policy.normalization.max_views


def test_many_parts_with_obfuscation_stay_within_the_view_budget():
    fake = FakeClassifier(by_substring={"kill": {"unsafe": 0.95}})
    policy = load_policy(POLICIES / "basic.yaml").replace(max_chars=1000, max_parts=64)
    text = ("k1ll \u200b b4d " * 70 + ". ") * 60  # about 60 parts, each with views
    verdict = Guard(policy, classifier=fake).check_prompt(text)
    assert verdict.action is Action.BLOCK
    parts = sum(1 for s in fake.calls[-1] if "\u200b" in s.text)
    assert len(fake.calls[-1]) - parts <= policy.normalization.max_views


def test_role_strings_and_enums_are_both_accepted(guard):
    assert guard.check_many(["a"], role="response")[0].role is Role.RESPONSE
    assert guard.check_many(["a"], role=Role.PROMPT)[0].role is Role.PROMPT
