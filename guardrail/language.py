"""Language detection (langdetect, seeded so results are reproducible) and code normalisation.

Detection is langdetect's algorithm and profiles run by ``guardrail._langdetect``: the same
text cleaning, n-grams, seeded random draws and floating-point roundings (bit-identical
probabilities, checked against langdetect in the tests), ~2.6x faster, and without
langdetect's ~60 MB in-memory table of Python lists.

Short texts are where n-gram statistics guess ("hi" reads as Swahili, "hello" as Finnish, "Give
me a banana bread recipe" as Spanish), so a text of fewer than ``SHORT_TEXT_WORDS`` words gets a
language only when two detectors agree with confidence: langdetect's sampled trials and a
naive-Bayes posterior over all its n-grams (``FastProfiles.posterior``), both at least
``SHORT_TEXT_CONFIDENCE`` for the same language; a single word never does. Otherwise the text is
``und`` (the guard reports ``language: null``). A script that belongs to one language (Hangul,
kana, Thai, ...) still decides on any length.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Any

__all__ = [
    "SHORT_TEXT_CONFIDENCE",
    "SHORT_TEXT_WORDS",
    "UNDETERMINED",
    "detect_language",
    "normalize_language",
]

UNDETERMINED = "und"
#: Texts with fewer words than this need two agreeing, confident detectors to get a language.
SHORT_TEXT_WORDS = 8
#: How sure both detectors must be about a short text's language.
SHORT_TEXT_CONFIDENCE = 0.98

_ALIASES = {
    "zh-cn": "zh",
    "zh-tw": "zh",
    "zh-hk": "zh",
    "zh-hans": "zh",
    "zh-hant": "zh",
    "iw": "he",
    "in": "id",
    "ji": "yi",
    "jw": "jv",
    "tl": "fil",
}
_LETTER = re.compile(r"[^\W\d_]")
# langdetect cost grows with text length; the first few thousand characters decide anyway.
_MAX_DETECT_CHARS = 2_000

_lock = threading.Lock()
_profiles: Any = None


def normalize_language(code: str) -> str:
    """Normalise a language code: lower case, ``zh-cn``/``zh-tw`` -> ``zh``, region dropped.

    Args:
        code: a code such as ``en``, ``pt-BR``, ``zh_TW``.

    Returns:
        The bare ISO 639 code (``pt``, ``zh``), or ``und`` for an empty code or one that is
        not printable ASCII.
    """
    code = code.strip().lower().replace("_", "-")
    if not code or not (code.isascii() and code.isprintable()):
        return UNDETERMINED  # a code with control characters or surrogates is no language code
    if code in _ALIASES:
        return _ALIASES[code]
    return _ALIASES.get(code.split("-")[0], code.split("-")[0])


def _get_profiles() -> Any:
    """langdetect's profiles for the fast, bit-identical detection loop (``_langdetect``)."""
    global _profiles
    if _profiles is None:
        with _lock:
            if _profiles is None:
                from guardrail._langdetect import FastProfiles

                _profiles = FastProfiles.load()
    return _profiles


def detect_language(text: str) -> tuple[str, float]:
    """Detect the language of a text.

    Deterministic: the detector is seeded, so the same text always gets the same answer.

    Args:
        text: any text.

    Returns:
        ``(code, confidence)``; ``("und", 0.0)`` when the text has no letters or detection
        fails, and for a short text (one word, or fewer than ``SHORT_TEXT_WORDS`` words on
        which the two detectors do not agree with confidence) in a script several languages
        share.
    """
    return _detect(text[:_MAX_DETECT_CHARS])


@lru_cache(maxsize=8192)
def _detect(sample: str) -> tuple[str, float]:
    # Detection is deterministic (seeded), so repeated prompts can share one answer.
    if not _LETTER.search(sample):
        return UNDETERMINED, 0.0
    script = _script_language(sample)
    if script is not None:
        return script, 1.0
    from langdetect.lang_detect_exception import LangDetectException

    try:
        probs = _get_profiles().probabilities(sample)
    except LangDetectException:
        return UNDETERMINED, 0.0
    # zh-cn and zh-tw split their mass; sum by normalised code before choosing.
    totals: dict[str, float] = {}
    for lang, prob in probs:
        code = normalize_language(lang)
        totals[code] = totals.get(code, 0.0) + prob
    if not totals:
        return UNDETERMINED, 0.0
    code, prob = max(totals.items(), key=lambda kv: kv[1])
    words = sum(1 for word in sample.split() if _LETTER.search(word))
    if words < SHORT_TEXT_WORDS and not _confident_short(sample, code, prob, words):
        return UNDETERMINED, 0.0
    return code, min(prob, 1.0)


def _confident_short(sample: str, code: str, prob: float, words: int) -> bool:
    """Whether a short text's detected language ``code`` (langdetect's ``prob``) stands: more
    than one word, and langdetect and the naive-Bayes posterior both sure of it."""
    if words < 2 or prob < SHORT_TEXT_CONFIDENCE:
        return False
    posterior: dict[str, float] = {}
    for lang, p in _get_profiles().posterior(sample).items():
        key = normalize_language(lang)
        posterior[key] = posterior.get(key, 0.0) + p
    return posterior.get(code, 0.0) >= SHORT_TEXT_CONFIDENCE


def _script_language(text: str) -> str | None:
    """The language a script-unique writing system implies (Hangul -> ko, kana -> ja, ...)."""
    letters = sum(map(str.isalpha, text))
    if not letters:
        return None
    # Letters per script, keyed in order of each script's first letter in the text (so ties
    # go to the script seen first).
    firsts: list[tuple[int, str, int]] = []
    for lang, pattern in _script_patterns():
        count, first = 0, -1
        for m in pattern.finditer(text):
            if m.group().isalpha():
                count += 1
                if first < 0:
                    first = m.start()
        if count:
            firsts.append((first, lang, count))
    if not firsts:
        return None
    counts = {lang: n for _, lang, n in sorted(firsts)}
    if counts.get("ja"):
        return "ja"  # kana marks Japanese even among Han characters
    if counts.get("ko", 0) * 2 >= letters:
        return "ko"
    lang, n = max(counts.items(), key=lambda kv: kv[1])
    return lang if n * 2 >= letters else None


@lru_cache(maxsize=1)
def _script_patterns() -> list[tuple[str, re.Pattern[str]]]:
    """One character class per language of ``_SCRIPTS`` (its ranges joined)."""
    ranges: dict[str, list[str]] = {}
    for lo, hi, lang in _SCRIPTS:
        ranges.setdefault(lang, []).append(f"\\u{lo:04x}-\\u{hi:04x}")
    return [(lang, re.compile(f"[{''.join(r)}]")) for lang, r in ranges.items()]


_SCRIPTS = (
    (0x3040, 0x30FF, "ja"),
    (0xAC00, 0xD7AF, "ko"),
    (0x1100, 0x11FF, "ko"),
    (0x4E00, 0x9FFF, "zh"),
    (0x3400, 0x4DBF, "zh"),
    (0x0E00, 0x0E7F, "th"),
    (0x0370, 0x03FF, "el"),
    (0x0590, 0x05FF, "he"),
    (0x10A0, 0x10FF, "ka"),
    (0x0530, 0x058F, "hy"),
)
