"""Find the texts to check in OpenAI-shaped requests and results (dicts or typed objects).

Pure functions: nothing here calls a classifier. Each text comes out as a ``Piece`` with a label
(where it came from) so a verdict can say which part decided it; parts that cannot be checked
(images, audio, files, server-side references) come out as notes, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from guardrail.errors import UnguardedCallError

__all__ = ["Extracted", "Piece", "UnguardedCallError", "get"]

_TEXT_PARTS = {"text", "input_text", "output_text"}
_CONTEXT_CHARS = 2000


@dataclass(frozen=True)
class Piece:
    """One text to check, and where it came from (e.g. ``messages[3] (tool)``)."""

    text: str
    label: str
    context: str | None = None


@dataclass
class Extracted:
    """The texts of one side of a call, the notes about what could not be checked, and the
    prompt that a response answers."""

    pieces: list[Piece] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    prompt: str | None = None


def get(obj: Any, key: str) -> Any:
    """``obj[key]`` for mappings, ``obj.key`` for objects, None when missing."""
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def content_text(content: Any, where: str, notes: list[str]) -> str:
    """The text of a message content (a string or a list of parts); non-text parts are noted.

    Raises:
        TypeError: a shape the API would reject (content as an object, a part without a type,
            a text part whose text is not a string): refused rather than sent unchecked.
    """
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, bytes | Mapping) or not isinstance(content, Iterable):
        raise TypeError(
            f"{where}: content must be a string or a list of parts, not {type(content).__name__}"
        )
    texts = [_part_text(part, f"{where} part {k}", notes) for k, part in enumerate(content)]
    return "\n".join(t for t in texts if t)


def _part_text(part: Any, where: str, notes: list[str]) -> str:
    if isinstance(part, str):
        return part
    kind = get(part, "type")
    if not isinstance(kind, str):
        raise TypeError(f"{where}: a content part needs a string 'type'")
    text = get(part, "refusal" if kind == "refusal" else "text")
    if kind in _TEXT_PARTS or kind == "refusal":
        if not isinstance(text, str):
            raise TypeError(
                f"{where}: a {kind} part must carry a string, not {type(text).__name__}"
            )
        return text
    if isinstance(text, str):
        notes.append(f"{where}: unknown part type {kind!r}; its text was checked")
        return text
    notes.append(f"{where}: {kind} part not checked (not text)")
    return ""


def check_sequence(value: Any, name: str) -> list[Any]:
    """``value`` as a list of message-like items.

    Raises:
        TypeError: a string, bytes, mapping or non-iterable, or an item that is not an object.
    """
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a list of objects, not {type(value).__name__}")
    items = list(value)  # may be a one-shot iterable: read it once
    for i, item in enumerate(items):
        if (
            not isinstance(item, Mapping)
            and get(item, "role") is None
            and get(item, "type") is None
        ):
            raise TypeError(f"{name}[{i}] must be an object, not {type(item).__name__}")
    return items


def _tool_call_text(call: Any) -> str:
    fn = get(call, "function") or call
    name = get(fn, "name") or ""
    arguments = get(fn, "arguments")
    if arguments is None:
        arguments = get(fn, "input")  # custom tools carry free-form input
    return f"{name}({arguments or ''})"


def _render(turns: list[tuple[str, str]], end: int) -> str | None:
    """The last ``_CONTEXT_CHARS`` characters of ``role: text`` lines of ``turns[:end]``.

    Walks back only as far as those characters reach, so a long conversation is not joined
    again for every message checked.
    """
    lines: list[str] = []
    size = -1  # length of the lines joined by newlines
    for k in range(end - 1, -1, -1):
        role, text = turns[k]
        if not text:
            continue
        lines.append(f"{role}: {text}")
        size += len(lines[-1]) + 1
        if size >= _CONTEXT_CHARS:
            break
    return "\n".join(reversed(lines))[-_CONTEXT_CHARS:] or None


def _add_pieces(
    out: Extracted,
    turns: list[tuple[str, str]],
    select: str,
    untrusted: frozenset[str],
    label: Callable[[int, str], str],
) -> None:
    """Queue the chosen turns with text, each with the conversation before it as context."""
    chosen = _select([role for role, _ in turns], select, untrusted)
    for i, (role, text) in enumerate(turns):
        if i in chosen and text:
            out.pieces.append(Piece(text, label(i, role), _render(turns, i)))


def _select(roles: list[str], select: str, untrusted: frozenset[str]) -> set[int]:
    users = [i for i, role in enumerate(roles) if role == "user"]
    if select == "all":
        chosen = set(range(len(roles)))
    elif select == "user":
        chosen = set(users)
    else:
        chosen = {users[-1]} if users else ({len(roles) - 1} if roles else set())
    return chosen | {i for i, role in enumerate(roles) if role in untrusted}


def chat_prompt(messages: list[Any], select: str, untrusted: frozenset[str]) -> Extracted:
    """The prompt side of a chat request: the selected messages plus every untrusted one."""
    out = Extracted()
    turns: list[tuple[str, str]] = []
    for i, message in enumerate(messages):
        role = str(get(message, "role") or "user")
        where = f"messages[{i}] ({role})"
        text = content_text(get(message, "content"), where, out.notes)
        calls = get(message, "tool_calls") or ()
        text = "\n".join([text, *(_tool_call_text(c) for c in calls)]).strip()
        turns.append((role, text))
    _add_pieces(out, turns, select, untrusted, lambda i, role: f"messages[{i}] ({role})")
    users = [text for role, text in turns if role == "user" and text]
    out.prompt = users[-1] if users else (turns[-1][1] if turns else None)
    return out


def completion_prompt(prompt: Any, suffix: Any = None) -> Extracted:
    """The prompt side of a legacy completions request.

    Raises:
        UnguardedCallError: the prompt is given as token ids, which cannot be checked as text.
    """
    if isinstance(prompt, bytes | Mapping):
        raise TypeError(f"prompt must be a string or a list, not {type(prompt).__name__}")
    prompts = [prompt] if isinstance(prompt, str) else list(prompt or [])
    if not all(isinstance(p, str) for p in prompts):
        raise UnguardedCallError(
            "completions.create with token-id prompts cannot be moderated; pass text prompts"
        )
    out = Extracted(prompt="\n".join(prompts) or None)
    out.pieces = [Piece(p, f"prompt[{i}]") for i, p in enumerate(prompts) if p]
    if isinstance(suffix, str) and suffix:
        out.pieces.append(Piece(suffix, "suffix"))
    return out


def responses_input(
    input: Any,
    instructions: Any,
    select: str,
    untrusted: frozenset[str],
    server_state: bool,
) -> Extracted:
    """The prompt side of a Responses API request."""
    if isinstance(input, str):
        items: list[Any] = [{"role": "user", "content": input}]
    else:
        items = check_sequence(input or [], "input")
    out = Extracted()
    turns: list[tuple[str, str]] = []
    if isinstance(instructions, str) and instructions:
        turns.append(("developer", instructions))
    for i, item in enumerate(items):
        kind = get(item, "type") or "message"
        where = f"input[{i}] ({kind})"
        if kind == "message" or get(item, "role") is not None:
            role = str(get(item, "role") or "user")
            turns.append((role, content_text(get(item, "content"), where, out.notes)))
        elif kind in ("function_call_output", "custom_tool_call_output"):
            output = get(item, "output")
            turns.append(("tool", content_text(output, where, out.notes)))
        elif kind in ("function_call", "custom_tool_call"):
            turns.append(("assistant", _tool_call_text(item)))
        else:
            out.notes.append(f"{where}: item not checked (no text the wrapper can see)")
            turns.append((kind, ""))
    if server_state:
        out.notes.append("earlier turns held by the server are not re-checked")
    _add_pieces(out, turns, select, untrusted, lambda i, role: f"input ({role}) #{i}")
    users = [text for role, text in turns if role == "user" and text]
    out.prompt = users[-1] if users else None
    return out


def chat_choice(choice: Any) -> Extracted:
    """The response side of one chat choice: content, tool calls, audio transcript."""
    out = Extracted()
    index = get(choice, "index") or 0
    message = get(choice, "message") or {}
    texts = [content_text(get(message, "content"), f"choices[{index}]", out.notes)]
    texts += [_tool_call_text(c) for c in get(message, "tool_calls") or ()]
    if get(message, "function_call") is not None:
        texts.append(_tool_call_text(get(message, "function_call")))
    audio = get(message, "audio")
    if audio is not None and isinstance(get(audio, "transcript"), str):
        texts.append(get(audio, "transcript"))
    # Refusals and reasoning are model text too, as are fields the openai types do not know.
    for name in ("refusal", "reasoning_content", "reasoning"):
        texts += _strings(get(message, name))
    extra = getattr(message, "model_extra", None)
    if isinstance(extra, dict):
        for name, value in extra.items():
            if name not in ("reasoning_content", "reasoning"):
                texts += _strings(value)
    text = "\n".join(t for t in texts if t)
    if text:
        out.pieces.append(Piece(text, f"choices[{index}]"))
    return out


def _strings(value: Any) -> list[str]:
    """Every string in a value (nested mappings, lists and objects' ``model_dump``)."""
    if isinstance(value, str):
        return [value]
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        value = dump()
    if isinstance(value, Mapping):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _strings(item)]
    return []


def completion_choice(choice: Any) -> Extracted:
    """The response side of one legacy completions choice."""
    text = get(choice, "text") or ""
    index = get(choice, "index") or 0
    return Extracted(pieces=[Piece(text, f"choices[{index}]")] if text else [])


def responses_output(response: Any) -> Extracted:
    """The response side of a Responses API result: every output item that carries text."""
    out = Extracted()
    texts = []
    for i, item in enumerate(get(response, "output") or ()):
        kind = get(item, "type")
        where = f"output[{i}] ({kind})"
        if kind == "message":
            texts.append(content_text(get(item, "content"), where, out.notes))
        elif kind in ("function_call", "custom_tool_call"):
            texts.append(_tool_call_text(item))
        elif kind == "reasoning":
            summary = get(item, "summary") or ()
            texts.append(content_text([{"type": "text", **_plain(s)} for s in summary], where, []))
        else:
            out.notes.append(f"{where}: item not checked (no generated text)")
    text = "\n".join(t for t in texts if t)
    if text:
        out.pieces.append(Piece(text, "output"))
    return out


def _plain(part: Any) -> dict[str, Any]:
    return {"text": get(part, "text") or ""}
