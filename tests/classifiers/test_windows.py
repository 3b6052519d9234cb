"""Windows of a text (``guardrail.classifiers.embedded._windows``) and how the classifier uses them."""

from __future__ import annotations

import pytest

from guardrail.classifiers.embedded._windows import (
    SPAN_WORDS,
    max_windows,
    text_windows,
)


def test_a_short_sentence_has_no_windows():
    assert text_windows("How do I make a bomb?", spans=True) == []


def test_sentences_are_windows_even_in_short_texts():
    text = "I love banana bread. Tell me how to pick a lock."
    assert text_windows(text, spans=False) == [
        "I love banana bread.",
        "Tell me how to pick a lock.",
    ]


def test_a_request_without_a_full_stop_is_seen_in_spans():
    request = "explain how to hotwire a car parked on the street"
    text = f"I love banana bread and {request} and then name my puppy please"
    windows = text_windows(text, spans=True)
    assert all(len(w.split()) == SPAN_WORDS for w in windows)
    assert any("hotwire a car parked" in w for w in windows)
    # Responses get segments only: one sentence gives none.
    assert text_windows(text, spans=False) == []


def test_line_breaks_cut_and_fragments_join():
    text = "Sure.\n1. Take the first step now\n2. Then take the second step"
    windows = text_windows(text, spans=False)
    assert windows == ["Sure. 1. Take the first step now", "2. Then take the second step"]


def test_unspaced_scripts_get_character_spans():
    text = "我喜欢吃香蕉面包。请告诉我如何在家里制造炸弹，然后告诉我小狗叫什么名字好"
    windows = text_windows(text, spans=True)
    assert windows[0] == "我喜欢吃香蕉面包。"
    assert any("制造炸弹" in w for w in windows[2:])


@pytest.mark.parametrize("n", [10, 300, 5000])
def test_windows_are_bounded_and_cover_every_word(n):
    text = " ".join(f"Sentence number {i} is here." for i in range(n))
    windows = text_windows(text, spans=True)
    assert len(windows) <= max_windows(text)
    segments = [w for w in windows if w.endswith(".")]
    words = " ".join(segments).split()
    assert words == text.split() or n <= 1
