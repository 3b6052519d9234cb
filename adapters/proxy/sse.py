"""Server-sent events: reading them from the upstream and writing them to the caller."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

__all__ = ["DONE", "Event", "encode", "read_events"]

DONE = b"data: [DONE]\n\n"


@dataclass(frozen=True, slots=True)
class Event:
    """One SSE event: its optional name and its data (lines joined with newlines)."""

    name: str | None
    data: str


async def read_events(lines: AsyncIterator[str]) -> AsyncIterator[Event]:
    """Group SSE lines into events (comments and ids are dropped)."""
    name: str | None = None
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield Event(name, "\n".join(data))
            name, data = None, []
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            name = value
    if data:
        yield Event(name, "\n".join(data))


def encode(payload: Any, name: str | None = None) -> bytes:
    """One SSE event with a JSON payload."""
    prefix = f"event: {name}\n" if name else ""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return f"{prefix}data: {body}\n\n".encode()
