"""Finding every piece of model text in OpenAI requests and responses.

Nothing that carries text to or from a model may pass unchecked: message contents of every role,
tool-call names and arguments, tool results, refusals, completion prompts and suffixes. Parts the
classifier cannot read (images, audio, files, token ids) are refused unless the settings allow
media.
"""

from __future__ import annotations

from typing import Any

from .errors import ProxyHTTPError
from .schemas import ChatCompletionRequest, ChatMessage, CompletionRequest

__all__ = [
    "chat_choice_text",
    "chat_prompt",
    "completion_choice_text",
    "completion_prompts",
    "input_texts",
    "last_user_text",
    "responses_texts",
]

_TEXT_PARTS = {"text", "input_text", "output_text", "refusal", "summary_text", "reasoning_text"}
_MEDIA_PARTS = {"image_url", "input_image", "input_audio", "input_file", "file", "audio"}


def _media_error(param: str, kind: str) -> ProxyHTTPError:
    return ProxyHTTPError(
        400,
        f"{param}: content of type {kind!r} cannot be moderated by this proxy's text classifier; "
        "send text only (or set GUARDRAIL_ALLOW_MEDIA=true to forward media unmoderated).",
        code="unsupported_content",
        param=param,
    )


def _message_texts(message: ChatMessage, where: str, allow_media: bool) -> list[str]:
    texts: list[str] = []
    if isinstance(message.content, str):
        texts.append(message.content)
    elif message.content is not None:
        for j, part in enumerate(message.content):
            if part.text is not None:
                texts.append(part.text)
            elif part.refusal is not None:
                texts.append(part.refusal)
            elif not allow_media:
                raise _media_error(f"{where}.content.{j}", part.type)
    calls = [c.function for c in message.tool_calls or []] + [message.function_call]
    for call in calls:
        if call is not None:
            texts.extend(t for t in (call.name, call.arguments) if t)
    if message.refusal:
        texts.append(message.refusal)
    return texts


def chat_prompt(request: ChatCompletionRequest, *, allow_media: bool) -> str:
    """The whole conversation as one text: every message of every role, tool calls included.

    Raises:
        ProxyHTTPError: a media part, unless ``allow_media``.
    """
    texts: list[str] = []
    for i, message in enumerate(request.messages):
        texts.extend(_message_texts(message, f"messages.{i}", allow_media))
    return "\n\n".join(t for t in texts if t)


def last_user_text(request: ChatCompletionRequest) -> str | None:
    """The last user message's text: the context a response is checked against."""
    for message in reversed(request.messages):
        if message.role == "user":
            return "\n".join(_message_texts(message, "", True)) or None
    return None


def _token_ids_error(param: str) -> ProxyHTTPError:
    return ProxyHTTPError(
        400,
        f"{param}: token-id input cannot be moderated by this proxy; send text.",
        code="unsupported_content",
        param=param,
    )


def completion_prompts(request: CompletionRequest) -> list[str]:
    """The prompt text(s) of a completions request, the suffix included.

    Raises:
        ProxyHTTPError: token-id prompts.
    """
    return [*input_texts(request.prompt, "prompt"), *([request.suffix] if request.suffix else [])]


def input_texts(value: object, param: str) -> list[str]:
    """Texts of a ``str | list[str]`` input (completions prompt, embeddings input).

    Raises:
        ProxyHTTPError: token ids (ints or lists of ints).
    """
    if isinstance(value, str):
        return [value]
    assert isinstance(value, list)
    if all(isinstance(v, str) for v in value):
        return list(value)
    raise _token_ids_error(param)


def _content_texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    texts: list[str] = []
    if isinstance(content, list):
        for part in content:
            if isinstance(part, dict):
                texts += [v for k in ("text", "refusal") if isinstance(v := part.get(k), str)]
    return texts


def chat_choice_text(choice: dict[str, Any]) -> str:
    """All text of one chat completion choice: content, refusal, tool calls, audio transcript."""
    message = choice.get("message") or {}
    if not isinstance(message, dict):
        return ""
    texts = _content_texts(message.get("content"))
    for key in ("refusal",):
        if isinstance(message.get(key), str):
            texts.append(message[key])
    calls = [c.get("function") for c in message.get("tool_calls") or [] if isinstance(c, dict)]
    calls.append(message.get("function_call"))
    for call in calls:
        if isinstance(call, dict):
            texts += [v for k in ("name", "arguments") if isinstance(v := call.get(k), str)]
    audio = message.get("audio")
    if isinstance(audio, dict) and isinstance(audio.get("transcript"), str):
        texts.append(audio["transcript"])
    return "\n".join(t for t in texts if t)


def completion_choice_text(choice: dict[str, Any]) -> str:
    """The text of one completions choice."""
    text = choice.get("text")
    return text if isinstance(text, str) else ""


def responses_texts(value: Any, *, allow_media: bool, param: str = "input") -> list[str]:
    """Every text in a Responses API input or output (items, parts, tool calls and results).

    Raises:
        ProxyHTTPError: a media item or part, unless ``allow_media``.
    """
    texts: list[str] = []
    _walk(value, texts, allow_media, param)
    return [t for t in texts if t]


_TEXT_KEYS = ("text", "content", "arguments", "output", "refusal", "name", "summary", "input")


def _walk(value: Any, texts: list[str], allow_media: bool, where: str) -> None:
    if isinstance(value, str):
        texts.append(value)
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _walk(item, texts, allow_media, f"{where}.{i}")
        return
    if not isinstance(value, dict):
        return
    kind = value.get("type")
    if kind in _MEDIA_PARTS and not allow_media:
        raise _media_error(where, str(kind))
    if kind in _TEXT_PARTS and isinstance(value.get("text"), str):
        texts.append(value["text"])
        return
    for key in _TEXT_KEYS:
        if key in value:
            _walk(value[key], texts, allow_media, f"{where}.{key}")
