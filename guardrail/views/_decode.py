"""Decoding views: base64, hex and URL-encoded payloads embedded in text, and rot13."""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata
from collections.abc import Callable
from urllib.parse import unquote

from guardrail.views._tables import COMMON_WORDS

# At most this many payloads are decoded per text and kind (bounded work on hostile input).
MAX_PAYLOADS = 8

_B64 = re.compile(r"(?<![\w+/=-])[A-Za-z0-9+/_-]{16,}={0,2}(?![\w+/=-])")
_HEX_RUN = re.compile(r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}){8,}(?![0-9A-Fa-f])")
_HEX_SEP = re.compile(
    r"(?:(?:\\x|0x)[0-9A-Fa-f]{2}[ ,]?){4,}|(?<![0-9A-Za-z])(?:[0-9A-Fa-f]{2}[ :,-]){5,}"
    r"[0-9A-Fa-f]{2}(?![0-9A-Za-z])"
)
_HEX_JUNK = re.compile(r"\\x|0x|[ :,-]")
_URL = re.compile(r"\S*(?:%[0-9A-Fa-f]{2}\S*){3,}")
_SEGMENT = re.compile(r"[^.!?:;\n\"'«»()\[\]]+")
_WORD = re.compile(r"[A-Za-z]+")


def _texty(text: str) -> bool:
    """True for decoded bytes that read as text: printable, mostly letters, a few of them."""
    if len(text) < 4 or any(not c.isprintable() and c not in "\n\r\t" for c in text):
        return False
    visible = [c for c in text if not c.isspace()]
    letters = sum(1 for c in visible if unicodedata.category(c)[0] == "L")
    return letters >= 3 and letters >= 0.6 * len(visible)


def _utf8(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if _texty(text) else None


def _from_base64(token: str) -> str | None:
    core = token.rstrip("=")
    if len(core) % 4 == 1:
        return None
    padded = core + "=" * (-len(core) % 4)
    try:
        alt = b"-_" if ("-" in core or "_" in core) else None
        data = base64.b64decode(padded, altchars=alt, validate=True)
    except (binascii.Error, ValueError):
        return None
    return _utf8(data)


def _from_hex(token: str) -> str | None:
    digits = _HEX_JUNK.sub("", token)
    if len(digits) % 2:
        return None
    try:
        return _utf8(bytes.fromhex(digits))
    except ValueError:
        return None


def _from_url(token: str) -> str | None:
    decoded = unquote(token, errors="strict") if "%" in token else token
    return decoded if decoded != token and _texty(decoded) else None


def _replace(
    text: str,
    patterns: tuple[re.Pattern[str], ...],
    decode: Callable[[str], str | None],
    cap: int,
    payloads: list[str] | None = None,
) -> str:
    """``text`` with every decodable payload (at most MAX_PAYLOADS, each <= cap) decoded.

    The decoded payloads are also appended to ``payloads`` when it is given.
    """
    budget = [MAX_PAYLOADS]

    def sub(match: re.Match[str]) -> str:
        token = match.group(0)
        if budget[0] <= 0 or len(token) > cap:
            return token
        decoded = decode(token)
        if decoded is None:
            return token
        budget[0] -= 1
        if payloads is not None:
            payloads.append(decoded)
        return f" {decoded} "

    for pattern in patterns:
        text = pattern.sub(sub, text)
    return text


def decode_base64(
    text: str, *, max_payload_chars: int = 4096, payloads: list[str] | None = None
) -> str:
    """Decode base64 (standard or URL-safe) payloads of 16+ characters that hold UTF-8 text.

    Tokens that decode to binary (hashes, ids, long words) are left as they are. The decoded
    payloads are also appended to ``payloads`` when it is given (the same for the others).
    """
    if not _B64.search(text):
        return text
    return _replace(text, (_B64,), _from_base64, max_payload_chars, payloads)


def decode_hex(
    text: str, *, max_payload_chars: int = 4096, payloads: list[str] | None = None
) -> str:
    """Decode hex payloads (``68656c6c6f...``, ``\\x68\\x65``, ``68 65 6c ...``) holding text."""
    return _replace(text, (_HEX_SEP, _HEX_RUN), _from_hex, max_payload_chars, payloads)


def decode_url(
    text: str, *, max_payload_chars: int = 4096, payloads: list[str] | None = None
) -> str:
    """Decode URL-encoded (``%6B%69``) tokens with at least three escapes that hold text."""
    if "%" not in text:
        return text
    return _replace(text, (_URL,), _from_url, max_payload_chars, payloads)


def plausibility(text: str) -> float:
    """Share of the Latin-letter words of ``text`` that are very common words."""
    words = _WORD.findall(text)
    if not words:
        return 0.0
    return sum(1 for w in words if w.lower() in COMMON_WORDS) / len(words)


def decode_rot13(text: str) -> str:
    """rot13 applied to each segment (between punctuation) that reads better decoded.

    A segment is replaced only when its decoding is clearly more plausible language (more very
    common words) than the segment itself, so ordinary text is never changed.
    """

    def sub(match: re.Match[str]) -> str:
        segment = match.group(0)
        if len(_WORD.findall(segment)) < 2:
            return segment
        decoded = codecs.encode(segment, "rot13")
        after = plausibility(decoded)
        if after >= 0.4 and after >= plausibility(segment) + 0.25:
            return decoded
        return segment

    return _SEGMENT.sub(sub, text)
