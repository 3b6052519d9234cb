"""Redacting and restoring the texts inside request and response payloads.

Payloads are what OpenAI-style APIs take and return: JSON-like dicts and lists, or the SDK's
pydantic objects. A string is a text to redact when its key is one that carries model text
(``content``, ``text``, ``arguments``, ``prompt``, ``input``, ...) or it sits in a list under
such a key; ids, roles, model names and types are left alone. Restoring puts placeholders back in
every string (a placeholder the vault did not hand out stays as it is).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["TEXT_KEYS", "map_texts", "restore_payload"]

#: Keys whose string values (or lists of strings) are model text.
TEXT_KEYS = frozenset(
    {
        "content",
        "text",
        "arguments",
        "output",
        "input",
        "instructions",
        "prompt",
        "suffix",
        "refusal",
    }
)


def map_texts(value: Any, fn: Callable[[str], str], *, text: bool = False) -> Any:
    """``value`` with ``fn`` applied to each model text in it (a new object; the input is kept).

    Args:
        value: a payload (dicts, lists, pydantic objects, strings).
        fn: what to do with one text.
        text: whether a bare string ``value`` is itself a text.
    """
    if isinstance(value, str):
        return fn(value) if text else value
    if isinstance(value, Mapping):
        return {k: map_texts(v, fn, text=k in TEXT_KEYS) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(map_texts(v, fn, text=text) for v in value)
    fields = getattr(type(value), "model_fields", None)
    if isinstance(fields, dict) and callable(getattr(value, "model_copy", None)):
        changes = {
            name: map_texts(getattr(value, name), fn, text=name in TEXT_KEYS)
            for name in fields
            if getattr(value, name, None) is not None
        }
        return value.model_copy(update=changes)
    return value


def restore_payload(value: Any, restore: Callable[[str], str]) -> Any:
    """``value`` with ``restore`` applied to every string in it (a new object)."""
    if isinstance(value, str):
        return restore(value)
    if isinstance(value, Mapping):
        return {k: restore_payload(v, restore) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(restore_payload(v, restore) for v in value)
    fields = getattr(type(value), "model_fields", None)
    if isinstance(fields, dict) and callable(getattr(value, "model_copy", None)):
        changes = {
            name: restore_payload(getattr(value, name), restore)
            for name in fields
            if getattr(value, name, None) is not None
        }
        return value.model_copy(update=changes)
    return value
