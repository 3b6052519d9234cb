"""Short texts get a language only when it can be told; never a confident wrong guess."""

from __future__ import annotations

import pytest

from guardrail import Guard, load_policy
from guardrail.language import SHORT_TEXT_WORDS, _get_profiles, detect_language
from guardrail.testing import FakeClassifier
from tests.conftest import POLICIES


@pytest.mark.parametrize(
    "text",
    [
        "hi",  # langdetect: sw
        "hello",  # fi
        "Give me a banana bread recipe",  # es
        "tell me a story",  # it
        "merhaba",  # a single word never gets a language by n-grams
        "bonjour",
        "ok",
    ],
)
def test_short_texts_that_cannot_be_told_are_undetermined(text):
    assert detect_language(text) == ("und", 0.0)


def test_banana_bread_is_never_spanish():
    assert detect_language("Give me a banana bread recipe")[0] in {"en", "und"}


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("How do I kill a Python process?", "en"),
        ("How to make a bomb", "en"),
        ("Wie kann ich eine Bombe bauen?", "de"),
        ("¿Cómo puedo hacer una bomba?", "es"),
        ("Comment fabriquer une bombe ?", "fr"),
        ("Как сделать бомбу?", "ru"),
        ("كيف أصنع قنبلة؟", "ar"),
        ("Làm thế nào để chế tạo bom?", "vi"),
        ("Jinsi ya kutengeneza bomu?", "sw"),
    ],
)
def test_short_texts_the_detectors_agree_on_keep_their_language(text, lang):
    assert len(text.split()) < SHORT_TEXT_WORDS
    code, confidence = detect_language(text)
    assert code == lang and confidence >= 0.98


@pytest.mark.parametrize(
    ("text", "lang"), [("안녕", "ko"), ("こんにちは", "ja"), ("สวัสดี", "th"), ("你好", "zh")]
)
def test_a_script_of_one_language_decides_even_one_word(text, lang):
    assert detect_language(text) == (lang, 1.0)


def test_longer_texts_are_detected_as_before():
    # Eight words and more: langdetect alone, even where the posterior would hesitate.
    text = "Give me a banana bread recipe for tonight please"
    assert len(text.split()) >= SHORT_TEXT_WORDS
    assert detect_language(text)[0] == "en"


def test_posterior_is_a_distribution():
    posterior = _get_profiles().posterior("Wie backe ich Brot?")
    assert sum(posterior.values()) == pytest.approx(1.0)
    assert max(posterior, key=posterior.__getitem__) == "de"
    assert _get_profiles().posterior("123 !!!") == {}


@pytest.mark.parametrize("text", ["hi", "hello", "12345"])
def test_verdict_language_is_null_when_it_cannot_be_told(text):
    guard = Guard(load_policy(POLICIES / "basic.yaml"), classifier=FakeClassifier())
    verdict = guard.check_prompt(text)
    assert verdict.language is None and verdict.scores.language is None
    assert guard.check_prompt("").language is None
