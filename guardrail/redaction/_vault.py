"""The per-request vault: placeholders out, values back in, streamed answers included.

A vault lives for one request (one ``wrap()`` call, one proxy request). It maps each redacted
value to a typed, numbered placeholder (``<EMAIL_1>``, ``<AWS_KEY_2>``; the same value gets the
same placeholder within the request) and restores them in the answer. It never shows its values:
``repr`` gives only a count, it cannot be pickled or serialised, and nothing logs it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import NoReturn

from guardrail.types import Action, Entity

__all__ = ["PLACEHOLDER", "Redaction", "StreamRestorer", "Vault", "mask"]

#: A placeholder as the vault writes it: ``<`` TYPE ``_`` number ``>``.
PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]*?)_(\d+)>")
# The start of a placeholder not yet complete at the end of a chunk.
_PARTIAL = re.compile(r"<[A-Z0-9_]*$")
_MAX_PLACEHOLDER = 48


class Vault:
    """Placeholder <-> value for one request. Not thread-safe: one request, one vault."""

    __slots__ = ("_counters", "_placeholders", "_values")

    def __init__(self) -> None:
        self._values: dict[str, str] = {}  # placeholder -> value
        self._placeholders: dict[tuple[str, str], str] = {}  # (type, value) -> placeholder
        self._counters: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._values)

    def __bool__(self) -> bool:
        return bool(self._values)

    def __repr__(self) -> str:
        return f"Vault({len(self._values)} placeholders)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Vault holds redacted values and cannot be pickled or serialised")

    @property
    def placeholders(self) -> list[str]:
        """The placeholders handed out so far (never the values)."""
        return list(self._values)

    def placeholder(self, entity_type: str, value: str) -> str:
        """The placeholder for a value (a new number for a new value of this type)."""
        key = (entity_type, value)
        found = self._placeholders.get(key)
        if found is not None:
            return found
        number = self._counters.get(entity_type, 0) + 1
        self._counters[entity_type] = number
        placeholder = f"<{entity_type}_{number}>"
        self._placeholders[key] = placeholder
        self._values[placeholder] = value
        return placeholder

    def redact(self, text: str, entities: Sequence[Entity]) -> tuple[str, list[Entity]]:
        """Replace the entities whose action is ``redact`` by placeholders.

        Args:
            text: the text the entities' spans point into.
            entities: the entities found in it (non-overlapping, as detectors return them).

        Returns:
            The redacted text, and the entities with ``placeholder`` set on the replaced ones
            (spans still refer to the original text).
        """
        out: list[str] = []
        annotated: list[Entity] = []
        pos = 0
        for entity in sorted(entities, key=lambda e: e.start):
            if entity.action is not Action.REDACT or entity.start < pos:
                annotated.append(entity)
                continue
            placeholder = self.placeholder(entity.type, text[entity.start : entity.end])
            out += [text[pos : entity.start], placeholder]
            pos = entity.end
            annotated.append(entity.model_copy(update={"placeholder": placeholder}))
        out.append(text[pos:])
        return "".join(out), annotated

    def restore(self, text: str) -> str:
        """The text with every placeholder of this vault replaced by its value (others stay)."""
        if not self._values or "<" not in text:
            return text
        return PLACEHOLDER.sub(lambda m: self._values.get(m.group(0), m.group(0)), text)

    def restore_all(self, texts: Iterable[str]) -> list[str]:
        """``restore`` over several texts."""
        return [self.restore(t) for t in texts]

    def restorer(self) -> StreamRestorer:
        """A restorer for one streamed answer."""
        return StreamRestorer(self)


class StreamRestorer:
    """Restore placeholders in a stream of chunks, even when one is split across chunks.

    ``feed`` returns what can be shown now; the end of a chunk that may be the start of a
    placeholder (``<EMA``) is held until the next chunk says whether it is one. ``flush`` returns
    whatever is held at the end of the stream.
    """

    __slots__ = ("_held", "_vault")

    def __init__(self, vault: Vault) -> None:
        self._vault = vault
        self._held = ""

    @property
    def held(self) -> str:
        """Text held back (the possible start of a placeholder)."""
        return self._held

    def feed(self, chunk: str) -> str:
        """Restored text that can be released now."""
        text = self._held + chunk
        if not self._vault:
            self._held = ""
            return text
        partial = _PARTIAL.search(text)
        if partial is not None and len(text) - partial.start() <= _MAX_PLACEHOLDER:
            self._held = text[partial.start() :]
            text = text[: partial.start()]
        else:
            self._held = ""
        return self._vault.restore(text)

    def flush(self) -> str:
        """Whatever is still held, restored (at the end of the stream)."""
        text, self._held = self._held, ""
        return self._vault.restore(text)


class Redaction:
    """What ``Guard.redact`` returns: the redacted text, the entities found, the vault.

    ``entities`` carry types, spans (in the original text), scores, actions and, for the ones
    replaced, their placeholders; never the values, which only the vault holds.
    """

    __slots__ = ("entities", "text", "vault")

    def __init__(self, text: str, entities: Sequence[Entity], vault: Vault) -> None:
        self.text = text
        self.entities = tuple(entities)
        self.vault = vault

    @property
    def redacted(self) -> bool:
        """True when at least one entity was replaced."""
        return any(e.placeholder is not None for e in self.entities)

    def restore(self, text: str) -> str:
        """An answer with this request's placeholders put back."""
        return self.vault.restore(text)

    def __repr__(self) -> str:
        types = ", ".join(e.type for e in self.entities)
        return f"Redaction(text={self.text!r}, entities=[{types}])"


def mask(text: str, entities: Sequence[Entity]) -> str:
    """``text`` with every entity's span replaced by ``<TYPE>`` (for logs: no vault, no values).

    Spans past the end of ``text`` are clipped; overlapping ones are skipped.
    """
    out: list[str] = []
    pos = 0
    for entity in sorted(entities, key=lambda e: e.start):
        start, end = min(entity.start, len(text)), min(entity.end, len(text))
        if start < pos or end <= start:
            continue
        out += [text[pos:start], f"<{entity.type}>"]
        pos = end
    out.append(text[pos:])
    return "".join(out)
