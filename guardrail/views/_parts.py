"""Code-switching: split a text that mixes languages into one part per detected language."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache

from guardrail.views._tables import FUNCTION_WORD_LANGUAGE, FUNCTION_WORDS

_SENTENCE = re.compile(r"[^.!?。！？؟।\n]+[.!?。！？؟।]*")
_LETTER = re.compile(r"[^\W\d_]")
# Sentences with fewer letters than this get no language of their own (detection on a few
# words is a guess); they join the part of the sentence before them.
MIN_LETTERS = 12
# Past this many sentences, neighbours are merged first so detection stays bounded.
MAX_SENTENCES = 16
MIN_CONFIDENCE = 0.8


_ASCII_WORD = re.compile(r"[A-Za-z]+")


@lru_cache(maxsize=4096)
def script_of(ch: str) -> str:
    """The Unicode script of a letter, from its name (``LATIN``, ``CYRILLIC``, ``CJK``, ...)."""
    name = unicodedata.name(ch, "")
    return name.split(" ", 1)[0] if name else ""


def _signature(sentence: str) -> str | None:
    """A cheap guess at a sentence's language: its script, or for Latin its function words."""
    letters = _LETTER.findall(sentence)
    if len(letters) < MIN_LETTERS:
        return None
    ascii_letters = sum(map(str.isascii, letters))
    if ascii_letters * 2 < len(letters):
        scripts: dict[str, int] = {}
        for c in letters[:64]:
            scripts[script_of(c)] = scripts.get(script_of(c), 0) + 1
        return max(scripts.items(), key=lambda kv: kv[1])[0]
    counts = dict.fromkeys(FUNCTION_WORDS, 0)
    for word in _ASCII_WORD.findall(sentence):
        for lang in _WORD_LANGUAGES.get(word.lower(), ()):
            counts[lang] += 1
    hits = sorted((n, lang) for lang, n in counts.items())
    (second, _), (top, lang) = hits[-2], hits[-1]
    return f"LATIN:{lang}" if top >= 1 and top >= 2 * second else "LATIN"


def _word_languages() -> dict[str, tuple[str, ...]]:
    """Function word -> the languages listing it (``FUNCTION_WORDS`` inverted)."""
    out: dict[str, list[str]] = {}
    for lang, words in FUNCTION_WORDS.items():
        for word in words:
            out.setdefault(word, []).append(lang)
    return {word: tuple(langs) for word, langs in out.items()}


_WORD_LANGUAGES = _word_languages()


def _likely_mixed(signatures_of_items: list[str | None]) -> bool:
    """True when sentences (by their ``_signature``) differ in script or Latin function words."""
    signatures = set(signatures_of_items) - {None}
    scripts = {sig.split(":")[0] for sig in signatures if sig}
    latin_langs = {sig for sig in signatures if sig and ":" in sig}
    return len(scripts) >= 2 or len(latin_langs) >= 2


def sentences(text: str) -> list[str]:
    """The sentences of ``text`` (split after . ! ? and their CJK / Arabic / Devanagari forms)."""
    return [s.strip() for s in _SENTENCE.findall(text) if s.strip()]


def _family(ch: str) -> str:
    name = script_of(ch)
    return "CJK" if name in _CJK_NAMES else name


_CJK_NAMES = frozenset({"CJK", "HIRAGANA", "KATAKANA", "IDEOGRAPHIC"})
_TOKEN = re.compile(r"\S+")


def _script_runs(sentence: str) -> list[str]:
    """Cut a sentence where its letters change script (a switch without punctuation)."""
    if len({_family(c) for c in set(_LETTER.findall(sentence))}) <= 1:
        whole = sentence.strip()  # one script (or none): nowhere to cut
        return [whole] if whole else []
    runs: list[str] = []
    start, current = 0, ""
    for m in _TOKEN.finditer(sentence):
        letter = _LETTER.search(m.group(0))
        if letter is None:
            continue
        family = _family(letter.group(0))
        if current and family != current:
            runs.append(sentence[start : m.start()].strip())
            start = m.start()
        current = family
    runs.append(sentence[start:].strip())
    return [r for r in runs if r]


def _latin_runs(run: str) -> list[str]:
    """Cut a Latin-script run where its function words switch language ("... note Hoy hace muy").

    Each word takes the language of the nearest function word that marks exactly one language;
    the run is cut where that language changes. Runs with one marked language stay whole.
    """
    words = run.split()
    tags = [FUNCTION_WORD_LANGUAGE.get(w.strip(".,;:!?¿¡\"'()").lower()) for w in words]
    marked = [(i, t) for i, t in enumerate(tags) if t]
    if len({t for _, t in marked}) < 2:
        return [run]
    nearest = [min(marked, key=lambda it: abs(it[0] - i))[1] for i in range(len(words))]
    out, start = [], 0
    for i in range(1, len(words) + 1):
        if i == len(words) or nearest[i] != nearest[start]:
            out.append(" ".join(words[start:i]))
            start = i
    return out


def segments(text: str) -> list[str]:
    """Sentences, cut further where the script or the Latin function words switch language."""
    out = []
    for sentence in sentences(text):
        for run in _script_runs(sentence):
            out.extend(_latin_runs(run) if run.isascii() or _family(run[0]) == "LATIN" else [run])
    return out


def _bounded(items: list[str]) -> list[str]:
    if len(items) <= MAX_SENTENCES:
        return items
    size = -(-len(items) // MAX_SENTENCES)
    return [" ".join(items[i : i + size]) for i in range(0, len(items), size)]


def _item_language(
    item: str, signature: str | None, detect: Callable[[str], tuple[str, float]]
) -> str | None:
    letters = _LETTER.findall(item)
    # Short Latin fragments are guesses; short runs of another script are still telling.
    if not letters or (len(letters) < MIN_LETTERS and _family(letters[0]) == "LATIN"):
        return None
    if signature and signature.startswith("LATIN:") and len(letters) < 40:
        # On a few words the function words are a better guess than n-gram statistics.
        return signature.removeprefix("LATIN:")
    code, confidence = detect(item)
    return code if confidence >= MIN_CONFIDENCE and code != "und" else None


def language_parts(
    text: str, detect: Callable[[str], tuple[str, float]], *, max_parts: int = 4
) -> list[tuple[str, str]]:
    """Group the sentences of a text by detected language.

    Args:
        text: the text.
        detect: a language detector returning ``(code, confidence)``.
        max_parts: at most this many languages get a part (in order of first appearance).

    Returns:
        ``[(language, part_text), ...]`` when the text has sentences in at least two
        languages; otherwise an empty list (a monolingual text is scored whole).
    """
    items = _bounded(segments(text))
    if len(items) < 2:
        return []
    signatures = [_signature(item) for item in items]
    if not _likely_mixed(signatures):
        return []
    langs = [_item_language(item, sig, detect) for item, sig in zip(items, signatures, strict=True)]
    known = [lang for lang in langs if lang is not None]
    if len(set(known)) < 2:
        return []
    grouped: dict[str, list[str]] = {}
    current = known[0]
    for item, lang in zip(items, langs, strict=True):
        current = lang or current
        grouped.setdefault(current, []).append(item)
    return [(lang, " ".join(parts)) for lang, parts in list(grouped.items())[:max_parts]]
