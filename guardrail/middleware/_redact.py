"""Redaction in the middleware: placeholders into the request, values back into the answer.

When the prompt's verdict says ``redact``, every model text of the call's arguments (message
contents, tool-call arguments, prompts, Responses input and instructions) is redacted with one
vault for the call, and the placeholders in the answer are restored before the caller sees it:
whole results at once, streams chunk by chunk (a placeholder split across chunks is held until
it is whole, per choice or per Responses part).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from guardrail.middleware._objects import replace
from guardrail.middleware._texts import get
from guardrail.redaction import StreamRestorer, Vault, map_texts, restore_payload
from guardrail.types import Role

if TYPE_CHECKING:
    from guardrail.guard import Guard

__all__ = ["redact_kwargs", "restore_async", "restore_result", "restore_sync"]

_PROMPT_KEYS = {"chat": ("messages",), "completion": ("prompt", "suffix")}
_RESPONSES_KEYS = ("input", "instructions")


def redact_kwargs(guard: Guard, kind: str, kwargs: dict[str, Any]) -> tuple[dict[str, Any], Vault]:
    """The call's arguments with the texts to redact replaced by placeholders, and the vault."""
    vault = Vault()

    def one(text: str) -> str:
        return guard.redact(text, role=Role.PROMPT, vault=vault).text

    keys = _PROMPT_KEYS.get(kind, _RESPONSES_KEYS)
    out = dict(kwargs)
    for key in keys:
        if key in out and out[key] is not None:
            # A top-level prompt / suffix / input / instructions string is itself a text.
            out[key] = map_texts(out[key], one, text=key != "messages")
    return out, vault


def restore_result(result: Any, vault: Vault) -> Any:
    """A non-streamed result with the vault's placeholders restored in every text."""
    if not vault:
        return result
    return restore_payload(result, vault.restore)


class _Restorers:
    """One ``StreamRestorer`` per choice (chat, completions) or part (Responses)."""

    def __init__(self, vault: Vault, kind: str) -> None:
        self.vault, self.kind = vault, kind
        self.by_key: dict[Any, StreamRestorer] = {}
        self.last_delta: dict[Any, Any] = {}

    def restorer(self, key: Any) -> StreamRestorer:
        if key not in self.by_key:
            self.by_key[key] = self.vault.restorer()
        return self.by_key[key]

    def chunk(self, chunk: Any) -> list[Any]:
        if self.kind == "responses":
            return self._event(chunk)
        choices = get(chunk, "choices")
        if not choices:
            return [restore_payload(chunk, self.vault.restore)]
        return [replace(chunk, choices=[self._choice(c) for c in choices])]

    def _choice(self, choice: Any) -> Any:
        restorer = self.restorer(get(choice, "index") or 0)
        finished = get(choice, "finish_reason") is not None
        if self.kind == "chat":
            delta = get(choice, "delta")
            content = get(delta, "content")
            text = restorer.feed(content) if isinstance(content, str) else None
            if finished and (held := restorer.flush()):
                text = (text or "") + held
            others = restore_payload(delta, self.vault.restore)  # tool calls, refusal, ...
            return replace(choice, delta=replace(others, content=content if text is None else text))
        text = get(choice, "text")
        restored = restorer.feed(text if isinstance(text, str) else "")
        if finished:
            restored += restorer.flush()
        return replace(choice, text=restored)

    def _event(self, event: Any) -> list[Any]:
        kind = str(get(event, "type") or "")
        key = (kind.rsplit(".", 1)[0], get(event, "item_id"), get(event, "content_index"))
        if kind.endswith(".delta") and isinstance(get(event, "delta"), str):
            self.last_delta[key] = event
            return [replace(event, delta=self.restorer(key).feed(get(event, "delta")))]
        out: list[Any] = []
        if kind.endswith(".done") and key in self.by_key:
            held = self.by_key.pop(key).flush()
            if held:
                out.append(replace(self.last_delta[key], delta=held))
        out.append(restore_payload(event, self.vault.restore))
        return out


def restore_sync(chunks: Iterable[Any], vault: Vault, kind: str) -> Iterator[Any]:
    """A moderated stream's chunks (or Responses events) with placeholders restored."""
    restorers = _Restorers(vault, kind)
    for chunk in chunks:
        yield from restorers.chunk(chunk)


async def restore_async(chunks: AsyncIterator[Any], vault: Vault, kind: str) -> AsyncIterator[Any]:
    """``restore_sync`` for async streams."""
    restorers = _Restorers(vault, kind)
    async for chunk in chunks:
        for out in restorers.chunk(chunk):
            yield out
