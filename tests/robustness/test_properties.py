"""Property tests: the views on arbitrary Unicode, the Guard on arbitrary text, the policy loader
on arbitrary YAML-ish data."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guardrail import Action, ConfigError, Guard, Policy, load_policy
from guardrail.testing import FakeClassifier
from guardrail.views.normalize import (
    fold_confusables,
    join_spaced_letters,
    nfkc,
    strip_invisible,
    text_views,
    undo_leetspeak,
)
from tests.conftest import POLICIES

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Any code point at all, lone surrogates included.
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=200)
TRICKY = st.lists(
    st.sampled_from(
        list("abcdefghijklmnopqrstuvwxyzKILL0134@$!| .-_\n")
        + list("аеорсухіАВЕКМНОРСТХ")  # Cyrillic look-alikes
        + list("αοινΑΒΕΗΚΜΝΟΡΤΧ")  # Greek look-alikes
        + ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u202e", "\ufe0f", "\U000e0041"]
        + ["ｋ", "𝐤", "ﬁ", "\ud800", "\udfff", "\x00", "é", "e\u0301", "👨", "ㅋ", "，"]
    ),
    max_size=80,
).map("".join)


def _script_text(lo: int, hi: int) -> st.SearchStrategy[str]:
    letters = st.characters(min_codepoint=lo, max_codepoint=hi, categories=("Lu", "Ll", "Lo"))
    return st.text(st.one_of(letters, st.sampled_from(list(" ,.?!\n"))), min_size=1, max_size=80)


NON_LATIN = st.one_of(
    _script_text(0x0400, 0x04FF),  # Cyrillic
    _script_text(0x0370, 0x03FF),  # Greek
    _script_text(0x0600, 0x06FF),  # Arabic
    _script_text(0x0900, 0x097F),  # Devanagari
    _script_text(0x4E00, 0x4FFF),  # CJK
    _script_text(0xAC00, 0xAD00),  # Hangul
    _script_text(0x0E00, 0x0E7F),  # Thai
)


@FAST
@given(st.one_of(ANY_TEXT, TRICKY))
def test_views_never_raise_and_respect_the_cap(text):
    views = text_views(text)
    assert len(views) <= 4
    assert all(v.text != text for v in views)
    assert len({v.label for v in views}) == len(views)


@FAST
@given(st.one_of(ANY_TEXT, TRICKY))
def test_unicode_steps_are_idempotent(text):
    for step in (nfkc, strip_invisible):
        once = step(text)
        assert step(once) == once


@FAST
@given(TRICKY)
def test_confusable_folding_reaches_a_fixed_point(text):
    once = fold_confusables(text)
    twice = fold_confusables(once)
    assert fold_confusables(twice) == twice
    assert len(once) == len(text)  # letters are swapped one for one, never dropped


@FAST
@given(st.one_of(ANY_TEXT, TRICKY))
def test_leet_and_spacing_never_raise(text):
    assert isinstance(undo_leetspeak(text), str)
    joined = join_spaced_letters(text)
    assert join_spaced_letters(joined) == joined or len(joined) <= len(text)


@FAST
@given(NON_LATIN)
def test_non_latin_scripts_survive_folding_untouched(text):
    assert fold_confusables(text) == text
    assert strip_invisible(text) == text
    assert undo_leetspeak(text) == text
    assert not any("confusables" in v.label for v in text_views(text))


GUARD = Guard(
    load_policy(POLICIES / "basic.yaml"),
    classifier=FakeClassifier(by_substring={"kill": {"unsafe": 0.95}}),
)


@FAST
@given(st.one_of(ANY_TEXT, TRICKY))
def test_guard_gives_a_serialisable_verdict_for_any_text(text):
    verdict = GUARD.check_prompt(text)
    assert verdict.action in set(Action)
    data = json.loads(verdict.model_dump_json())
    assert data["action"] == verdict.action.value
    json.dumps(verdict.model_dump(mode="json"))  # the stdlib encoder too


# -- the policy loader -------------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=20),
    st.sampled_from(["rules", "fake", "block", "allow", "parts", "mlcommons", "hate", "en", "("]),
)
FIELDS = [*sorted(Policy.model_fields), "classifier.options", "rules", "typo"]
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), inner, max_size=4),
    ),
    max_leaves=20,
)
POLICY_DICTS = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=8),
    st.fixed_dictionaries(
        {"name": st.text(min_size=1, max_size=10)},
        optional={
            "classifier": st.fixed_dictionaries(
                {"name": st.sampled_from(["rules", "fake", "nope"])},
                optional={"options": st.dictionaries(st.text(max_size=8), VALUES, max_size=3)},
            ),
            "thresholds": VALUES,
            "normalization": st.dictionaries(
                st.sampled_from(
                    ["enabled", "base64", "max_views", "max_payload_chars", "bogus", "rot13"]
                ),
                SCALARS,
                max_size=4,
            ),
            "blocklist": VALUES,
            "max_chars": SCALARS,
            "on_long_input": SCALARS,
            "language_overrides": VALUES,
        },
    ),
    VALUES,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(POLICY_DICTS)
def test_policy_loader_gives_a_policy_or_a_config_error(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "policy.yaml"
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        try:
            policy = load_policy(path)
        except ConfigError as e:
            assert str(path) in str(e)
        else:
            assert isinstance(policy, Policy)
            json.loads(policy.model_dump_json())


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=4))
def test_policy_replace_gives_a_policy_or_a_config_error(changes):
    base = load_policy(POLICIES / "basic.yaml")
    try:
        changed = base.replace(**changes)
    except ConfigError:
        return
    assert isinstance(changed, Policy)
