"""Unicode views: NFKC, invisible characters, look-alike letters (see ``normalize``)."""

from __future__ import annotations

import re
import unicodedata

from guardrail.views import _tables as tables
from guardrail.views._parts import script_of

_script = script_of

_NFKC_KEEP = re.compile(
    "(" + "".join(f"[{chr(lo)}-{chr(hi)}]+|" for lo, hi in tables.NFKC_KEEP_RANGES)[:-1] + ")"
)


def nfkc(text: str) -> str:
    """Unicode NFKC, except for CJK punctuation and Hangul compatibility jamo (kept as is)."""
    if text.isascii() or unicodedata.is_normalized("NFKC", text):
        return text
    pieces = _NFKC_KEEP.split(text)
    # re.split with one group: kept runs are at odd indices.
    return "".join(p if i % 2 else unicodedata.normalize("NFKC", p) for i, p in enumerate(pieces))


def _in(code: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(lo <= code <= hi for lo, hi in ranges)


def _pictographic(ch: str) -> bool:
    return ord(ch) >= 0x1F000 or unicodedata.category(ch) == "So"


def _keep_joiner(prev: str, nxt: str) -> bool:
    """ZWJ / ZWNJ matter next to joining scripts and inside emoji sequences."""
    return any(c and (_in(ord(c), tables.JOINING_RANGES) or _pictographic(c)) for c in (prev, nxt))


def _keep_selector(prev: str) -> bool:
    """Variation selectors matter after emoji, symbols and CJK ideographs."""
    return bool(prev) and (_pictographic(prev) or 0x3400 <= ord(prev) <= 0x2FFFF)


def _invisible_char(ch: str) -> bool:
    code = ord(ch)
    return (
        ch in tables.INVISIBLE
        or ch in tables.JOINERS
        or _in(code, (tables.VARIATION_SELECTORS, tables.VARIATION_SELECTORS_SUPPLEMENT))
        or _in(code, (tables.TAGS,))
    )


_MAYBE_INVISIBLE = re.compile(
    "["
    + "".join(re.escape(c) for c in tables.INVISIBLE | tables.JOINERS)
    + "".join(
        f"{chr(lo)}-{chr(hi)}"
        for lo, hi in (
            tables.VARIATION_SELECTORS,
            tables.VARIATION_SELECTORS_SUPPLEMENT,
            tables.TAGS,
        )
    )
    + "]"
)


def strip_invisible(text: str) -> str:
    """Remove invisible characters; decode Unicode tag characters to the ASCII they mirror."""
    if text.isascii() or not _MAYBE_INVISIBLE.search(text):
        return text
    # Whether a joiner stays depends on its neighbours, and a neighbour may itself be removed;
    # repeating until nothing changes makes the step idempotent (each pass only shortens or
    # decodes, so this ends quickly).
    while (stripped := _strip_once(text)) != text:
        text = stripped
    return text


def _strip_once(text: str) -> str:
    out: list[str] = []
    for i, ch in enumerate(text):
        if not _invisible_char(ch):
            out.append(ch)
            continue
        code = ord(ch)
        prev = out[-1] if out else ""
        if _in(code, (tables.TAGS,)):
            if 0xE0020 <= code <= 0xE007E:
                out.append(chr(code - 0xE0000))
        elif ch in tables.JOINERS:
            if _keep_joiner(prev, text[i + 1] if i + 1 < len(text) else ""):
                out.append(ch)
        elif not ch.isspace() and ch not in tables.INVISIBLE and _keep_selector(prev):
            out.append(ch)
    return "".join(out)


# -- confusables -----------------------------------------------------------------------------

_WORD = re.compile(r"[^\W\d_]+")


def _fold_word(word: str, latin_text: bool, turkic: bool) -> str:
    scripts = {_script(c) for c in word}
    if scripts == {"LATIN"}:
        # Latin look-alikes from outside ASCII (ɑ, ı); dotless ı is a letter in Turkic text.
        if turkic or not any(c in tables.TO_LATIN for c in word):
            return word
        return "".join(tables.TO_LATIN.get(c, c) for c in word)
    if len(scripts) == 1:
        # A whole word of look-alikes is folded only inside mostly Latin text.
        if latin_text and all(c in tables.TO_LATIN for c in word):
            return "".join(tables.TO_LATIN[c] for c in word)
        return word
    # The base script is the one with letters that have no Latin look-alike ("ж", "λ").
    for script, table in (("CYRILLIC", tables.TO_CYRILLIC), ("GREEK", tables.TO_GREEK)):
        if any(_script(c) == script and c not in tables.TO_LATIN for c in word):
            return "".join(table.get(c, c) if _script(c) == "LATIN" else c for c in word)
    if "LATIN" not in scripts and not latin_text:
        return word  # e.g. Cyrillic and Greek mixed, with no Latin around: nothing to fold to
    return "".join(tables.TO_LATIN.get(c, c) for c in word)


_ASCII_LETTER = re.compile(r"[A-Za-z]")
# Letters of the scripts folded here, and every look-alike in the table.
_FOLDABLE = re.compile(
    "[\u0370-\u03ff\u0400-\u052f\u0530-\u058f\u13a0-\u13ff"
    + "".join(re.escape(c) for c in tables.TO_LATIN)
    + "]"
)
# Letters that mark Turkic text, where dotless ı is a letter of its own, not a look-alike.
_TURKIC = re.compile("[şğŞĞİə]|ı.*[çöüÇÖÜ]|[çöüÇÖÜ].*ı", re.DOTALL)


def fold_confusables(text: str) -> str:
    """Fold look-alike letters of another script to the script of the word they hide in.

    ``"kіll"`` with a Cyrillic ``і`` becomes ``"kill"``; ``"пpивет"`` with a Latin ``p`` becomes
    all Cyrillic. Words written wholly in one script are left alone, except words made only of
    Latin look-alikes inside mostly Latin text (``"сосо"`` in an English sentence).
    """
    if text.isascii():
        return text
    other = len(_FOLDABLE.findall(text))
    if not other:
        return text
    latin_text = len(_ASCII_LETTER.findall(text)) > 2 * other
    turkic = _TURKIC.search(text) is not None
    return _WORD.sub(lambda m: _fold_word(m.group(0), latin_text, turkic), text)
