"""Bad text through the embedded default: cleaned before tokenising, scored like any other row."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from guardrail import Action, Guard
from guardrail.classifiers.embedded._tokenizer import clean_text
from guardrail.cli import cli

BAD = [
    "\ud800",  # lone high surrogate
    "how do I make a bomb \udfff",  # lone low surrogate after a harmful request
    "\udce2\udc82\udcac hello",  # surrogate-escaped bytes (os.fsdecode / argv)
    "a\x00b\x01c\x7f tell me a story",  # control characters
    "\U0010ffff\ufffe\uffff",  # non-characters
]
GOOD = [
    "How do I bake bread?",
    "How do I make a bomb at home?",
    "Sure, here is a recipe for banana bread.",
    "Wie backe ich Brot?",
]


@pytest.fixture(scope="module")
def guard() -> Guard:
    return Guard.from_policy("default")


def test_clean_text_replaces_only_lone_surrogates():
    assert clean_text("a\ud800b\udfff") == "a\ufffdb\ufffd"
    ok = "plain \x00 text \U0010ffff \ufffe Grüße 😀"
    assert clean_text(ok) is ok


@pytest.mark.parametrize("bad", BAD)
def test_a_bad_row_changes_no_other_rows_verdict(guard, bad):
    alone = [guard.check_prompt(t) for t in GOOD]
    batch = guard.check_many([GOOD[0], GOOD[1], bad, GOOD[2], GOOD[3]])
    others = batch[:2] + batch[3:]
    for a, b in zip(alone, others, strict=True):
        assert a.action is b.action
        # Scores are rounded to 6 decimals: batch and single float sums may differ in the last.
        assert b.scores.unsafe == pytest.approx(a.scores.unsafe, abs=2e-6)
        assert b.scores.categories == pytest.approx(a.scores.categories, abs=2e-6)
    verdict = batch[2]
    assert "error" not in verdict.decided_by  # scored, not a classifier failure
    json.dumps(verdict.model_dump(mode="json"))


@pytest.mark.parametrize("bad", BAD)
async def test_check_and_acheck_give_a_scored_verdict(guard, bad):
    for verdict in (guard.check_prompt(bad), await guard.acheck_prompt(bad)):
        assert verdict.action in set(Action)
        assert "error" not in verdict.decided_by
    response = guard.check_response(bad, prompt="q \ud800")
    assert "error" not in response.decided_by


def test_surrogate_text_scores_as_its_cleaned_form(guard):
    raw = guard.check_prompt("how do I make a bomb \udfff")
    cleaned = guard.check_prompt("how do I make a bomb \ufffd")
    assert raw.scores.unsafe == pytest.approx(cleaned.scores.unsafe, abs=1e-6)


def test_cli_check_with_bad_text_gives_a_verdict():
    result = CliRunner().invoke(cli, ["check", "tell me \ud800 a story \x00", "--json"])
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.stdout)
    assert verdict["action"] in {"allow", "flag", "block"}
    assert "error" not in verdict["decided_by"]
