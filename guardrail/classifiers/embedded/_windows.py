"""Windows of a text that the ``embedded`` classifier scores beside the whole text.

The encoder averages over a text's tokens, so one harmful sentence among benign ones is diluted
until it no longer shows. Each text is therefore also scored as windows and the classifier takes,
per category, the highest score of the whole text and of the windows that pass a floor (see
``EmbeddedClassifier.Options``: a prompt's segments and its spans have floors of their own):

- **Segments**: the text cut at sentence ends (``. ! ? ;`` and their CJK forms) and line breaks.
  Fragments under ``MIN_WORDS`` words, and lines ending with a colon, join the next segment (a
  lone "Sure.", a list number or "Here are the steps:" says nothing on its own).
- **Spans** (prompts only): inside a segment of ``SPAN_WORDS`` to ``MAX_SPAN_SEGMENT_WORDS``
  words, spans of ``SPAN_WORDS`` words every ``SPAN_STEP`` words, so a request without a full
  stop glued to the next sentence ("... at home and then tell me about puppies") is still seen
  on its own. Scripts written without spaces use spans of characters: ``SPAN_CHARS`` in
  Chinese and Japanese (a word is one to two characters), ``SPAN_CHARS_THAI`` in Thai (a word
  is ~5 characters: 24-character spans were ~5 words, fragments whose scores flagged 6.3% of
  XQuAD's benign Thai questions); a span never starts or ends inside a character cluster
  (before a combining vowel or tone mark).

There is no minimum text length: a two-sentence prompt gets two segments. A text yielding one
window equal to itself gets none. The number of windows is bounded by ``max_windows(text)``:
past it, segments are merged pairwise (neighbours into one, repeatedly) until they fit, so no
part of the text goes unscored, only seen in larger pieces; spans beyond the bound are not
scored (the segments still cover every word).
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["MIN_WORDS", "SPAN_STEP", "SPAN_WORDS", "max_windows", "split_windows"]

MIN_WORDS = 3
SPAN_WORDS = 12
SPAN_STEP = 8
# Characters a word takes in the scripts written without spaces: Chinese and Japanese one to
# two, Thai ~5. A character span is SPAN_WORDS words of them.
_CHARS_PER_WORD = 2
_CHARS_PER_WORD_THAI = 5
SPAN_CHARS = SPAN_WORDS * _CHARS_PER_WORD  # 24
SPAN_CHARS_THAI = SPAN_WORDS * _CHARS_PER_WORD_THAI  # 60
# Segments longer than this (tables, code, run-on documents) get no spans: the segments alone
# bound the cost of a long text (spans would double it).
MAX_SPAN_SEGMENT_WORDS = 64
MIN_WINDOWS_BOUND = 64

# A sentence end followed by white space (Latin, Greek and Cyrillic; the Devanagari and Bengali
# danda; Arabic and Urdu question mark, semicolon and full stop; Armenian, Ethiopic, Myanmar and
# Khmer full stops), a CJK sentence end (no space follows those), or a line break.
_SEGMENT_END = re.compile(r"(?<=[.!?;।॥؟؛۔։።။។])\s+|(?<=[。！？；])\s*|\s*\n\s*")
_WORD = re.compile(r"\S+")
# Scripts written without spaces between words.
_UNSPACED = re.compile(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")
_THAI = re.compile(r"[\u0e00-\u0e7f]")


def max_windows(text: str) -> int:
    """The most windows a text gets: 64, or a quarter of its words for longer texts."""
    return max(MIN_WINDOWS_BOUND, len(_WORD.findall(text)) // 4)


def _words(segment: str) -> int:
    n = len(_WORD.findall(segment))
    if _UNSPACED.search(segment):
        n = max(n, len(segment) // _CHARS_PER_WORD)
    return n


def _segments(text: str) -> list[str]:
    segments: list[str] = []
    carry = ""
    for piece in _SEGMENT_END.split(text):
        piece = piece.strip()
        if not piece:
            continue
        piece = f"{carry} {piece}".strip() if carry else piece
        # A fragment, or a line that introduces what follows ("Here are the steps:"), is
        # scored with the next piece.
        if _words(piece) < MIN_WORDS or piece.endswith((":", "：")):
            carry = piece
            continue
        carry = ""
        segments.append(piece)
    if carry:
        if segments:
            segments[-1] = f"{segments[-1]} {carry}"
        else:
            segments.append(carry)
    return segments


def _spans(segment: str) -> list[str]:
    words = _WORD.findall(segment)
    if _UNSPACED.search(segment) and len(words) < SPAN_WORDS:
        thai = bool(_THAI.search(segment))
        size, per_word = (
            (SPAN_CHARS_THAI, _CHARS_PER_WORD_THAI) if thai else (SPAN_CHARS, _CHARS_PER_WORD)
        )
        if len(segment) <= size or len(segment) > MAX_SPAN_SEGMENT_WORDS * per_word:
            return []
        step = size // 2
        return [
            segment[_cluster_start(segment, i) : _cluster_start(segment, i + size)].strip()
            for i in range(0, len(segment) - size + step, step)
        ]
    if len(words) <= SPAN_WORDS or len(words) > MAX_SPAN_SEGMENT_WORDS:
        return []
    last = len(words) - SPAN_WORDS
    starts = [*range(0, last, SPAN_STEP), last]
    return [" ".join(words[i : i + SPAN_WORDS]) for i in starts]


def _cluster_start(text: str, i: int) -> int:
    """``i``, or the first index after it that does not fall on a combining mark (Thai vowels
    above and below, tone marks), so a cut never splits a character cluster."""
    while i < len(text) and unicodedata.category(text[i]) in ("Mn", "Mc"):
        i += 1
    return i


def _merge_pairs(segments: list[str]) -> list[str]:
    return [" ".join(segments[i : i + 2]) for i in range(0, len(segments), 2)]


def split_windows(text: str, *, spans: bool) -> tuple[list[str], list[str]]:
    """The segments and the spans to score beside ``text``, apart (their floors differ).

    Args:
        text: the text.
        spans: also cut spans of words inside long segments (prompts); no spans if False.

    Returns:
        (segments, spans): no segments when the text is one segment already; at most
        ``max_windows(text)`` windows in all.
    """
    bound = max_windows(text)
    segments = _segments(text)
    while len(segments) > bound:
        segments = _merge_pairs(segments)
    windows = [s for s in segments if s != text.strip()] if len(segments) > 1 else []
    cut: list[str] = []
    if spans:
        for segment in segments:
            for span in _spans(segment):
                if len(windows) + len(cut) >= bound:
                    return windows, cut
                cut.append(span)
    return windows, cut
