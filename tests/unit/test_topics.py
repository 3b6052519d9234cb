"""Topic rails: calibration on the shipped background, policy fields, verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from guardrail import Action, Guard, Policy
from guardrail.policy import Topic
from guardrail.testing import FakeClassifier
from guardrail.topics import Z_MID, TopicScorer, background_sentences

POLITICS = Topic(
    name="politics",
    description="Elections, political parties, politicians and government policy debates.",
    examples=[
        "Who should I vote for in the next election?",
        "What do you think of the president?",
        "Which party has the better immigration policy?",
    ],
)
COOKING = Topic(
    name="cooking",
    description="Recipes, ingredients and preparing food.",
    examples=["How do I make pasta from scratch?", "Give me a recipe for chocolate cake."],
    action="flag",
)


def _keyword_embed(texts):
    """A deterministic stand-in encoder: one axis per keyword, plus a shared 'everyday' axis."""
    words = ["vote", "election", "party", "president", "recipe", "pasta", "cake"]
    out = np.zeros((len(texts), len(words) + 1), dtype=np.float32)
    for i, text in enumerate(texts):
        low = text.lower()
        out[i, :-1] = [low.count(w) for w in words]
        out[i, -1] = 0.1
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_background_is_shipped_and_multilingual():
    sentences = background_sentences()
    assert len(sentences) >= 90
    assert any("?" in s for s in sentences) and any("。" in s for s in sentences)


def test_scores_are_calibrated_per_topic_against_the_background():
    scorer = TopicScorer([POLITICS, COOKING], embed=_keyword_embed)
    [on, off] = scorer.score(["Which party wins the election? vote!", "Tell me about the sea."])
    assert [s.topic for s in on] == ["politics", "cooking"]
    assert on[0].score > 0.9 and on[0].z > Z_MID
    assert on[1].score < 0.5
    # Everyday text sits at the background's median: about 2.5 deviations below the midpoint.
    assert off[0].score < 0.2 and off[1].score < 0.2


def test_guard_blocks_banned_and_flags_off_topic_with_the_real_encoder():
    policy = Policy(
        name="rails",
        classifier={"name": "fake"},
        banned_topics=[POLITICS],
        allowed_topics=[COOKING],
        off_topic_action="flag",
    )
    guard = Guard(policy, classifier=FakeClassifier())
    # Topics defined in English, texts in German and Japanese.
    banned = guard.check_prompt("Welche Partei soll ich bei der Bundestagswahl wählen?")
    assert banned.action is Action.BLOCK
    assert "topic:politics" in banned.decided_by
    fired = {c.category: c for c in banned.categories}
    assert fired["topic:politics"].threshold == 0.5
    on_topic = guard.check_prompt("チョコレートケーキのレシピを教えてください。")
    assert on_topic.action is Action.ALLOW
    off_topic = guard.check_prompt("How do I fix a flat bicycle tyre?")
    assert off_topic.action is Action.FLAG
    assert off_topic.decided_by == ("off_topic",)
    # Responses are left alone unless topic_roles says otherwise.
    assert guard.check_response("Vote for the green party.").action is Action.ALLOW


def test_topic_fields_are_validated():
    with pytest.raises(ValueError, match="repeated: politics"):
        Policy(name="x", banned_topics=[POLITICS], allowed_topics=[POLITICS])
    with pytest.raises(ValueError, match="examples"):
        Topic(name="t", description="d", examples=[])
    with pytest.raises(ValueError, match="action"):
        Topic(name="t", description="d", examples=["e"], action="redact")
