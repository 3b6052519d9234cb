"""Per-choice state of a moderated stream: the moderator, held tool calls, held logprobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from guardrail.streaming import StreamModerator
from guardrail.types import Verdict

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
    function_call: dict[str, str] = field(default_factory=dict)
    refusal: str = ""
    # (end position in the moderator's text, logprobs object) per text delta, released with it
    logprobs: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    def hold(self, delta: dict[str, Any], keys: tuple[str, ...]) -> None:
        """Accumulate the held fields of one delta (tool-call pieces are concatenated)."""
        if "tool_calls" in keys and isinstance(delta.get("tool_calls"), list):
            for piece in delta["tool_calls"]:
                if isinstance(piece, dict):
                    self._tool_piece(piece)
        call = delta.get("function_call")
        if "function_call" in keys and isinstance(call, dict):
            _concat(self.function_call, call, ("name", "arguments"))
        if "refusal" in keys and isinstance(delta.get("refusal"), str):
            self.refusal += delta["refusal"]

    def _tool_piece(self, piece: dict[str, Any]) -> None:
        index = piece.get("index", 0)
        key = index if isinstance(index, int) else 0
        tool = self.tools.setdefault(key, {"index": key, "function": {}})
        for name in ("id", "type"):
            if isinstance(piece.get(name), str):
                tool[name] = piece[name]
        function = piece.get("function")
        if isinstance(function, dict):
            _concat(tool["function"], function, ("name", "arguments"))

    def held_text(self) -> str:
        """All held text (tool names and arguments, function call, refusal), for one check."""
        texts: list[str] = []
        for tool in self.tools.values():
            texts += [tool["function"].get(k, "") for k in ("name", "arguments")]
        texts += [self.function_call.get(k, "") for k in ("name", "arguments")]
        texts.append(self.refusal)
        return "\n".join(t for t in texts if t)

    def held_fields(self) -> dict[str, Any]:
        """The held fields as one delta (each tool call complete)."""
        out: dict[str, Any] = {}
        if self.tools:
            out["tool_calls"] = [self.tools[k] for k in sorted(self.tools)]
        if self.function_call:
            out["function_call"] = dict(self.function_call)
        if self.refusal:
            out["refusal"] = self.refusal
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


def _concat(target: dict[str, Any], piece: dict[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        value = piece.get(key)
        if isinstance(value, str):
            target[key] = target.get(key, "") + value
