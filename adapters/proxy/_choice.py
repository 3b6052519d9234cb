"""Per-choice state of a moderated stream: the moderator, held fields, held logprobs.

A choice's streamed text (``delta.content``, or ``text`` for completions) goes through the
moderator. Every other field that carries moderated strings (``fields.py``: tool calls, function
calls, refusals, ``reasoning_content``, fields not known yet) is held whole until the choice
finishes, then checked once and sent in the finishing chunk; fields without such strings
(``role``, ids) pass as they come."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from guardrail.redaction import StreamRestorer
from guardrail.streaming import StreamModerator
from guardrail.types import Verdict

from .fields import moderated_texts

__all__ = ["ChoiceState"]


@dataclass(slots=True)
class ChoiceState:
    """What the relay knows about one choice (``index``) of a stream."""

    index: int
    moderator: StreamModerator
    recorded: int = 0
    verdicts: list[Verdict] = field(default_factory=list)
    released_any: bool = False
    blocked: bool = False
    finished: bool = False
    tools: dict[int, dict[str, Any]] = field(default_factory=dict)
    # other held fields, merged piece by piece (strings and lists concatenated), by key
    delta_extra: dict[str, Any] = field(default_factory=dict)
    choice_extra: dict[str, Any] = field(default_factory=dict)
    # the fields of the current delta / choice that pass as they come
    passing: dict[str, Any] = field(default_factory=dict)
    passing_choice: dict[str, Any] = field(default_factory=dict)
    # (end position in the moderator's text, logprobs object) per text delta, released with it
    logprobs: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    # puts the request's placeholders back into released text (None: nothing was redacted)
    restorer: StreamRestorer | None = None

    def restore(self, text: str, *, end: bool = False) -> str:
        """Released text with placeholders restored (a split one is held until whole)."""
        if self.restorer is None:
            return text
        out = self.restorer.feed(text)
        return out + self.restorer.flush() if end else out

    def hold(self, fields: dict[str, Any], where: str, skip: tuple[str, ...]) -> dict[str, Any]:
        """Hold the fields of one delta (``where="choices[].delta"``) or choice
        (``"choices[]"``) that carry moderated strings; return the others, which pass now.

        Tool-call pieces are merged by their index; other held fields piece by piece.
        """
        passing: dict[str, Any] = {}
        held = self.delta_extra if where.endswith("delta") else self.choice_extra
        for key, value in fields.items():
            if key in skip:
                continue
            if key == "tool_calls" and isinstance(value, list) and held is self.delta_extra:
                for piece in value:
                    if isinstance(piece, dict):
                        self._tool_piece(piece)
            elif not moderated_texts(_SHAPE, {key: value}, where):
                passing[key] = value
            else:
                held[key] = _merge(held[key], value) if key in held else value
        return passing

    def _tool_piece(self, piece: dict[str, Any]) -> None:
        index = piece.get("index", 0)
        key = index if isinstance(index, int) else 0
        tool = self.tools.setdefault(key, {"index": key, "function": {}})
        for name in ("id", "type"):
            if isinstance(piece.get(name), str):
                tool[name] = piece[name]
        function = piece.get("function")
        if isinstance(function, dict):
            tool["function"] = _merge(tool["function"], function)

    def held_text(self) -> str:
        """All held text (tool calls, function call, refusal, reasoning, ...), for one check."""
        delta = self.held_fields()
        texts = moderated_texts(_SHAPE, delta, "choices[].delta")
        texts += moderated_texts(_SHAPE, self.choice_extra, "choices[]")
        return "\n".join(texts)

    def held_fields(self) -> dict[str, Any]:
        """The held delta fields as one delta (each tool call complete)."""
        out: dict[str, Any] = dict(self.delta_extra)
        if self.tools:
            out["tool_calls"] = [self.tools[k] for k in sorted(self.tools)]
        return out

    def add_logprobs(self, logprobs: Any, end: int) -> None:
        """Keep a text delta's logprobs until its text is released."""
        if isinstance(logprobs, dict):
            self.logprobs.append((end, logprobs))

    def pop_logprobs(self, released_upto: int) -> dict[str, Any] | None:
        """Logprobs of the deltas released so far, merged (lists concatenated), or None."""
        ready = [lp for end, lp in self.logprobs if end <= released_upto]
        if not ready:
            return None
        self.logprobs = [(end, lp) for end, lp in self.logprobs if end > released_upto]
        merged: dict[str, Any] = {}
        for lp in ready:
            for key, value in lp.items():
                if isinstance(value, list):
                    merged[key] = [*merged.get(key, []), *value]
                else:
                    merged.setdefault(key, value)
        return merged


_SHAPE = "chat.chunk"  # the completions chunk shape lists the same choice-level fields


def _merge(old: Any, new: Any) -> Any:
    """Two pieces of one streamed field: strings and lists concatenated, objects merged key by
    key, anything else replaced."""
    if isinstance(old, str) and isinstance(new, str):
        return old + new
    if isinstance(old, list) and isinstance(new, list):
        return old + new
    if isinstance(old, dict) and isinstance(new, dict):
        out = dict(old)
        for key, value in new.items():
            out[key] = _merge(out[key], value) if key in out else value
        return out
    return new
