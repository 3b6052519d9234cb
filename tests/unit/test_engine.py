"""Table-driven tests of the pure engine: (policy, scores, text) -> action and what decided."""

from __future__ import annotations

import json

import pytest

from guardrail import Action, Role, ScoreSet, evaluate, load_policy
from guardrail.engine import error_verdict
from tests.conftest import POLICIES

POLICY = load_policy(POLICIES / "basic.yaml")


def s(unsafe: float, lang: str | None = "en", **cats: float) -> ScoreSet:
    return ScoreSet(unsafe=unsafe, categories=cats, language=lang, classifier="t")


CASES = [
    # id, scores, role, text, expected action, expected decided_by
    ("clean", s(0.1), Role.PROMPT, "hello", Action.ALLOW, ()),
    ("flag_overall", s(0.5), Role.PROMPT, "x", Action.FLAG, ("threshold",)),
    ("just_below_flag", s(0.4999), Role.PROMPT, "x", Action.ALLOW, ()),
    ("block_overall", s(0.9), Role.PROMPT, "x", Action.BLOCK, ("threshold",)),
    (
        "category_block_beats_overall_flag",
        s(0.6, hate=0.85),
        Role.PROMPT,
        "x",
        Action.BLOCK,
        ("threshold",),
    ),
    ("category_flag_only", s(0.1, hate=0.55), Role.PROMPT, "x", Action.FLAG, ("threshold",)),
    ("unlisted_category_ignored", s(0.1, violent_crimes=0.99), Role.PROMPT, "x", Action.ALLOW, ()),
    ("response_thresholds_differ", s(0.9), Role.RESPONSE, "x", Action.FLAG, ("threshold",)),
    ("response_block", s(0.96), Role.RESPONSE, "x", Action.BLOCK, ("threshold",)),
    (
        "jailbreak_prompt_only",
        s(0.1, jailbreak=0.9),
        Role.PROMPT,
        "x",
        Action.BLOCK,
        ("threshold",),
    ),
    ("jailbreak_ignored_on_response", s(0.1, jailbreak=0.9), Role.RESPONSE, "x", Action.ALLOW, ()),
    ("group_override_zh", s(0.35, "zh"), Role.PROMPT, "x", Action.FLAG, ("threshold",)),
    ("group_override_block_zh", s(0.75, "zh"), Role.PROMPT, "x", Action.BLOCK, ("threshold",)),
    ("exact_language_beats_group", s(0.25, "ja"), Role.PROMPT, "x", Action.FLAG, ("threshold",)),
    ("exact_keeps_group_block", s(0.72, "ja"), Role.PROMPT, "x", Action.BLOCK, ("threshold",)),
    ("override_not_for_en", s(0.35, "en"), Role.PROMPT, "x", Action.ALLOW, ()),
    ("override_prompt_only", s(0.65, "zh"), Role.RESPONSE, "x", Action.FLAG, ("threshold",)),
    (
        "blocklist_term",
        s(0.0),
        Role.PROMPT,
        "a FORBIDDEN phrase here",
        Action.BLOCK,
        ("blocklist",),
    ),
    ("blocklist_pattern", s(0.0), Role.RESPONSE, "code secret-1234", Action.BLOCK, ("blocklist",)),
    ("term_needs_whole_word", s(0.0), Role.PROMPT, "forbidden phrases", Action.ALLOW, ()),
    (
        "allowlist_beats_threshold",
        s(0.99),
        Role.PROMPT,
        "a harmless idiom",
        Action.ALLOW,
        ("allowlist",),
    ),
    (
        "blocklist_beats_allowlist",
        s(0.0),
        Role.PROMPT,
        "harmless idiom, forbidden phrase",
        Action.BLOCK,
        ("blocklist",),
    ),
    ("no_text_skips_lists", s(0.0), Role.PROMPT, None, Action.ALLOW, ()),
]


@pytest.mark.parametrize(
    ("scores", "role", "text", "action", "decided_by"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_engine_table(scores, role, text, action, decided_by):
    verdict = evaluate(POLICY, scores, role=role, text=text)
    assert verdict.action is action
    assert verdict.decided_by == decided_by
    assert verdict.policy == "basic"
    assert verdict.policy_hash == POLICY.content_hash


def test_fired_categories_most_severe_first():
    verdict = evaluate(POLICY, s(0.6, hate=0.85), role=Role.PROMPT, text="x")
    assert [(f.category, f.action) for f in verdict.categories] == [
        ("hate", Action.BLOCK),
        ("unsafe", Action.FLAG),
    ]
    assert verdict.categories[0].threshold == 0.8


def test_stage_and_view_recorded():
    scores = ScoreSet(unsafe=0.95, language="en", stage="strong", view="base64")
    verdict = evaluate(POLICY, scores, role=Role.PROMPT, text="x")
    assert verdict.decided_by == ("threshold", "stage:strong", "view:base64")


def test_verdict_is_frozen_and_json_roundtrips():
    verdict = evaluate(POLICY, s(0.95, hate=0.9), role=Role.PROMPT, text="x")
    with pytest.raises(Exception, match="frozen"):
        verdict.action = Action.ALLOW  # type: ignore[misc]
    data = json.loads(verdict.model_dump_json())
    assert data["action"] == "block"
    assert data["scores"]["categories"] == {"hate": 0.9}
    assert type(verdict).model_validate_json(verdict.model_dump_json()) == verdict


@pytest.mark.parametrize(("on_error", "action"), [("block", Action.BLOCK), ("allow", Action.ALLOW)])
def test_error_verdict_follows_on_error(on_error, action):
    policy = POLICY.replace(on_error=on_error)
    verdict = error_verdict(policy, role=Role.PROMPT, error="boom")
    assert verdict.action is action
    assert verdict.decided_by == ("error",)
    assert "boom" in verdict.notes[0]


def test_most_severe():
    assert Action.most_severe() is Action.ALLOW
    assert Action.most_severe(Action.FLAG, Action.BLOCK, Action.ALLOW) is Action.BLOCK
    assert Action("flag") is Action.FLAG and Action.FLAG == "flag"


def test_refusal_thresholds_act_on_responses_only():
    from guardrail.policy import Policy

    policy = Policy.model_validate(
        {
            "name": "watch-refusals",
            "thresholds": {"response": {"refusal": {"flag_at": 0.8}}},
        }
    )
    refused = ScoreSet(unsafe=0.01, refusal=0.95, classifier="t")
    verdict = evaluate(policy, refused, role=Role.RESPONSE)
    assert verdict.action is Action.FLAG
    assert [f.category for f in verdict.categories] == ["refusal"]
    assert (
        evaluate(
            policy, ScoreSet(unsafe=0.01, refusal=0.5, classifier="t"), role=Role.RESPONSE
        ).action
        is Action.ALLOW
    )
    with pytest.raises(ValueError, match="responses only"):
        Policy.model_validate(
            {"name": "x", "thresholds": {"prompt": {"refusal": {"flag_at": 0.5}}}}
        )


def test_refusal_thresholds_in_a_language_override_are_for_responses_only():
    from guardrail.policy import Policy

    override = {"languages": ["de"], "prompt": {"refusal": {"flag_at": 0.5}}}
    with pytest.raises(ValueError, match=r"language_overrides\.0\.prompt\.refusal"):
        Policy.model_validate({"name": "x", "language_overrides": [override]})
