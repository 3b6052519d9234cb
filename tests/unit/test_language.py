"""Language detection and code normalisation."""

from __future__ import annotations

import pytest

from guardrail import detect_language, normalize_language


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("zh-cn", "zh"),
        ("zh-TW", "zh"),
        ("zh_tw", "zh"),
        ("pt-BR", "pt"),
        ("EN", "en"),
        ("iw", "he"),
        (" de ", "de"),
        ("", "und"),
    ],
)
def test_normalize(code, expected):
    assert normalize_language(code) == expected


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("The weather is lovely today and we are going for a walk.", "en"),
        ("Das Wetter ist heute schön und wir gehen spazieren.", "de"),
        ("Il fait beau aujourd'hui et nous allons nous promener.", "fr"),
        ("El clima está agradable hoy y vamos a dar un paseo.", "es"),
        ("今天天气很好，我们去散步吧。", "zh"),
        ("今日はいい天気なので散歩に行きましょう。", "ja"),
        ("오늘 날씨가 좋아서 산책하러 갑니다.", "ko"),
        ("الطقس جميل اليوم وسنذهب في نزهة.", "ar"),
        ("आज मौसम अच्छा है और हम टहलने जा रहे हैं।", "hi"),
        ("วันนี้อากาศดีเราจะไปเดินเล่นกัน", "th"),
    ],
)
def test_detect(text, lang):
    code, confidence = detect_language(text)
    assert code == lang and 0.5 < confidence <= 1.0


@pytest.mark.parametrize("text", ["", "   ", "12345 !!! ???", "🙂🙂", "\x00\x01"])
def test_no_letters_is_undetermined(text):
    assert detect_language(text) == ("und", 0.0)


def test_deterministic():
    text = "ok ja"
    assert len({detect_language(text) for _ in range(20)}) == 1
