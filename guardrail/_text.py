"""Splitting long texts into parts that a classifier can score one by one."""

from __future__ import annotations

import re

_BREAKS = re.compile(r"(?<=[.!?。！？\n])\s*|\s+")


def split_parts(text: str, max_chars: int) -> list[str]:
    """Split ``text`` into consecutive parts of at most ``max_chars`` characters.

    Cuts at the last sentence end or white space inside each window, so words stay whole where
    possible; a window with neither is cut hard. Joining the parts gives back every non-space
    character of the text.
    """
    if max_chars <= 0:
        raise ValueError("max_chars must be positive")
    parts: list[str] = []
    start, n = 0, len(text)
    while start < n:
        end = min(start + max_chars, n)
        if end < n:
            window = text[start:end]
            cut = None
            for m in _BREAKS.finditer(window):
                if m.end() > len(window) // 2:
                    cut = m.end() if m.end() > 0 else None
            if cut:
                end = start + cut
        piece = text[start:end].strip()
        if piece:
            parts.append(piece)
        start = end
    return parts
