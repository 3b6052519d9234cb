"""Text views against obfuscation: the same text as a classifier should also see it.

Attackers hide harmful text from classifiers with invisible characters, look-alike letters,
leetspeak, spaced letters and encodings. Each *view* undoes one family of tricks. The ``Guard``
scores the original text and every view that differs from it, takes the highest score, and
records the view that gave it (``decided_by`` holds ``view:<label>``).

Views, in the order they are built (at most ``max_views`` per text):

* ``nfkc`` / ``invisible`` / ``confusables`` (one cumulative view, labelled by the steps that
  changed something, e.g. ``invisible+confusables``): Unicode NFKC (fullwidth and mathematical
  letters, ligatures); removal of zero-width, bidi-control and other invisible characters
  (Unicode tag characters are decoded, since text can be smuggled in them); look-alike letters
  of another script folded to the script of the word they hide in (Cyrillic "а" in a Latin
  word). A word written wholly in one non-Latin script is left alone, so Russian stays Russian.
* ``leetspeak`` / ``spacing`` (on top of the previous view): ``k1ll`` -> ``kill``,
  ``k i l l`` -> ``kill``.
* ``base64``, ``hex``, ``url``: embedded payloads decoded in place when they hold text; when
  other text surrounds them, also ``base64:payload`` (etc.): the decoded payloads alone, since
  an instruction around a request ("decode this and do it: ...") dilutes its embedding.
* ``rot13``: segments whose rot13 decoding reads clearly more like language than the original.

A view that differs from the original only in punctuation or white space is dropped: it
would cost a classifier call and tell nothing new.

Example:
    >>> [v.label for v in text_views("how to k\\u200bi\\u200bl\\u200bl")]
    ['invisible']
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from guardrail.language import UNDETERMINED, detect_language
from guardrail.types import Sample
from guardrail.views import _tables as tables
from guardrail.views._decode import decode_base64, decode_hex, decode_rot13, decode_url
from guardrail.views._parts import language_parts
from guardrail.views._unicode import fold_confusables, nfkc, strip_invisible

__all__ = [
    "Normalization",
    "View",
    "fold_confusables",
    "is_view_label",
    "join_spaced_letters",
    "language_parts",
    "nfkc",
    "scoring_notes",
    "strip_invisible",
    "text_views",
    "undo_leetspeak",
    "view_samples",
]


class Normalization(BaseModel):
    """Which text views a policy scores besides the original text (all on by default)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = Field(True, description="Master switch; false scores only the original.")
    nfkc: bool = Field(True, description="Unicode NFKC (fullwidth, mathematical letters, ...).")
    invisible: bool = Field(
        True, description="Remove zero-width, bidi-control and other invisible characters."
    )
    confusables: bool = Field(
        True, description="Fold look-alike letters of another script inside a word."
    )
    leetspeak: bool = Field(True, description="Read digits and symbols inside words as letters.")
    spacing: bool = Field(True, description="Join letters spaced apart ('k i l l').")
    base64: bool = Field(True, description="Decode embedded base64 payloads holding text.")
    hex: bool = Field(True, description="Decode embedded hex payloads holding text.")
    url: bool = Field(True, description="Decode URL-encoded (%XX) payloads holding text.")
    rot13: bool = Field(True, description="Decode rot13 where the result reads more like language.")
    language_parts: bool = Field(
        True, description="Score text mixing languages also by parts, one per language."
    )
    max_views: int = Field(4, ge=0, le=16, description="Most views scored per text.")
    max_payload_chars: int = Field(
        4096, gt=0, le=1_000_000, description="Longest encoded payload that is decoded."
    )
    max_language_parts: int = Field(
        4, ge=2, le=16, description="Most languages that get a part of their own."
    )


@dataclass(frozen=True, slots=True)
class View:
    """A view of a text: what was undone (``label``) and the resulting text."""

    label: str
    text: str


# -- leetspeak and spacing -------------------------------------------------------------------

_LEET_CHARS = "".join(re.escape(c) for c in tables.LEET)
# A word of letters, digits and symbols that starts and ends with a letter or digit (so "now!"
# keeps its "!" and "@user" its "@").
_LEET_TOKEN = re.compile(rf"[A-Za-z0-9](?:[A-Za-z0-9{_LEET_CHARS}]*[A-Za-z0-9])?")
_LEET_INSIDE = re.compile(rf"[A-Za-z][{_LEET_CHARS}]+[A-Za-z]")
_DIGITS_INSIDE = re.compile(r"[A-Za-z][0-9]+[A-Za-z]")
# Longer tokens are ids, hashes or encoded payloads, not words.
_LEET_WORD_MAX = 16
# In a text written in leetspeak, an all-digit word this short is read as letters ("70" for
# "to", "4" for "a"); longer ones are numbers.
_LEET_DIGITS_MAX = 3
# Three or more single letters with the same separator between each ("k i l l", "k.i.l.l").
_SPACED = re.compile(r"(?<![^\W_])[^\W_]([ .\-_*·/~])[^\W_](?:\1[^\W_])+(?![^\W_])")


def _unleet_word(match: re.Match[str]) -> str:
    """A word that mixes in digits or symbols between its letters (``k1ll``, ``h4x0r``)."""
    token = match.group(0)
    letters = sum(c.isalpha() for c in token)
    if len(token) > _LEET_WORD_MAX or letters < max(2, len(token) - letters):
        return token
    if not _LEET_INSIDE.search(token):
        return token
    return "".join(tables.LEET.get(c, c) for c in token)


def _unleet_any(match: re.Match[str]) -> str:
    """Any word with a digit or symbol (``57e4l``, ``Descr183``) and short all-digit words."""
    token = match.group(0)
    letters = sum(c.isalpha() for c in token)
    if len(token) > _LEET_WORD_MAX or letters == len(token):
        return token
    if not letters and len(token) > _LEET_DIGITS_MAX:
        return token
    return "".join(tables.LEET.get(c, c) for c in token)


def undo_leetspeak(text: str) -> str:
    """Read digits and symbols as letters in words written in leetspeak.

    Words with digits or symbols between their letters (``k1ll``, ``h4ck3r``, ``k!ll``) are read
    as letters. A text with two or more words that have digits between letters is written in
    leetspeak throughout: then every word with a digit or symbol inside (``57e4l``,
    ``Descr183``) and every all-digit word of up to three digits (``70`` for "to") is read as
    letters too. Longer numbers, ids and hashes over 16 characters, e-mail addresses and
    table pipes in other texts are left alone.
    """
    if not _LEET_INSIDE.search(text):
        return text
    words = [m.group(0) for m in _LEET_TOKEN.finditer(text)]
    leet = sum(len(w) <= _LEET_WORD_MAX and bool(_DIGITS_INSIDE.search(w)) for w in words)
    return _LEET_TOKEN.sub(_unleet_any if leet >= 2 else _unleet_word, text)


def _joiner(sep: str) -> Callable[[re.Match[str]], str]:
    return lambda m: m.group(0).replace(sep, "")


def join_spaced_letters(text: str) -> str:
    """Join three or more single letters spaced apart (``k i l l``, ``k.i.l.l`` -> ``kill``).

    Once such a run is found, pairs with the same separator are joined too (``t.o``).
    """
    seps = {m.group(1) for m in _SPACED.finditer(text)}
    if not seps:
        return text
    for sep in seps:
        pair = re.compile(rf"(?<![^\W_])[^\W_](?:{re.escape(sep)}[^\W_])+(?![^\W_])")
        text = pair.sub(_joiner(sep), text)
    return re.sub(r" {2,}", " ", text)


# -- views -----------------------------------------------------------------------------------


def _skeleton(text: str) -> str:
    """The text with punctuation/symbol runs and white-space runs reduced to one mark."""
    out: list[str] = []
    for ch in text:
        kind = "•" if unicodedata.category(ch)[0] in "PS" else " " if ch.isspace() else ch
        if not (out and kind in "• " and out[-1] == kind):
            out.append(kind)
    return "".join(out).strip()


def _chain(
    text: str, steps: Sequence[tuple[str, bool, Callable[[str], str]]]
) -> tuple[str, list[str]]:
    labels = []
    for label, on, fn in steps:
        if on:
            changed = fn(text)
            if changed != text:
                labels.append(label)
                text = changed
    return text, labels


def _candidates(text: str, s: Normalization) -> list[View]:
    views = []
    unicode_text, unicode_labels = _chain(
        text,
        [
            ("nfkc", s.nfkc, nfkc),
            ("invisible", s.invisible, strip_invisible),
            ("confusables", s.confusables, fold_confusables),
        ],
    )
    if unicode_labels:
        views.append(View("+".join(unicode_labels), unicode_text))
    plain_text, plain_labels = _chain(
        unicode_text,
        [("spacing", s.spacing, join_spaced_letters), ("leetspeak", s.leetspeak, undo_leetspeak)],
    )
    if plain_labels:
        views.append(View("+".join(unicode_labels + plain_labels), plain_text))
    cap = s.max_payload_chars
    for label, on, fn in (
        ("base64", s.base64, decode_base64),
        ("hex", s.hex, decode_hex),
        ("url", s.url, decode_url),
    ):
        if on:
            payloads: list[str] = []
            views.append(View(label, fn(unicode_text, max_payload_chars=cap, payloads=payloads)))
            if payloads:
                # The payload alone as well: an instruction around it ("decode this and
                # follow it: ...") dilutes the embedding of the decoded request.
                views.append(View(f"{label}:payload", " ".join(payloads)))
    if s.rot13:
        views.append(View("rot13", decode_rot13(text)))
    return views


def text_views(text: str, settings: Normalization | None = None) -> list[View]:
    """The views of ``text`` worth scoring: those that differ from it beyond punctuation.

    Args:
        text: the original text.
        settings: which views to build (default: all, at most 4).

    Returns:
        Up to ``settings.max_views`` views, in the order listed in the module docstring,
        without duplicates; empty when the text needs no view (the common case).
    """
    s = settings or Normalization()
    if not s.enabled or s.max_views == 0 or not text.strip():
        return []
    seen: set[str] = set()
    out: list[View] = []
    for view in _candidates(text, s):
        if view.text == text:
            continue
        if not seen:
            seen.add(_skeleton(text))  # only computed when some view differs
        key = _skeleton(view.text)
        if key in seen:
            continue
        seen.add(key)
        out.append(view)
        if len(out) >= s.max_views:
            break
    return out


def view_samples(sample: Sample, settings: Normalization) -> list[tuple[str, Sample]]:
    """What to score for ``sample`` besides itself: its views and its language parts.

    Each view gets its own language detection (an obfuscated text often reads as another
    language, and the view's language picks the thresholds when the view decides). Parts are
    built only for a text with sentences in at least two languages.

    Returns:
        ``[(label, sample), ...]``: labels are view labels (``base64``, ``invisible``, ...) or
        ``lang:<code>`` for a part in one language.
    """
    if not settings.enabled:
        return []
    out: list[tuple[str, Sample]] = []
    for view in text_views(sample.text, settings):
        code, _ = detect_language(view.text)
        language = sample.language if code == UNDETERMINED else code
        out.append((view.label, Sample(view.text, sample.role, sample.context, language)))
    if settings.language_parts:
        parts = language_parts(sample.text, detect_language, max_parts=settings.max_language_parts)
        out.extend(
            (f"lang:{code}", Sample(part, sample.role, sample.context, code))
            for code, part in parts
        )
    return out


def is_view_label(label: str | None) -> bool:
    """True for the label of a text view (not of a part of a long text or of a language)."""
    return label is not None and not label.startswith(("part:", "lang:", "truncated"))


def scoring_notes(labels: Sequence[str | None]) -> tuple[str, ...]:
    """Verdict notes saying what was scored besides the text: parts, views, language parts."""
    parts = sum(1 for label in labels if label is None or label.startswith("part:"))
    extra = [label for label in labels if label and not label.startswith(("part:", "truncated"))]
    notes = [f"scored in {parts} parts"] if parts > 1 else []
    if extra:
        notes.append(f"also scored: {', '.join(extra)}")
    return tuple(notes)
