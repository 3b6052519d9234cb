"""Which string fields of OpenAI requests and answers are moderated: every one, except those on
the explicit list below, each with its reason.

The rule is structural: the proxy does not pick the fields it checks (a new field would slip
through unnoticed), it walks every string of the parsed JSON and checks all of them but the
listed ones. A field the list does not name, known or not, is moderated. The keys of a JSON
schema's ``properties`` are texts the model reads, so they are walked too.

Paths are dotted keys; ``[]`` stands for any item of a list, ``*`` for any one key and ``**``
for any depth (``a.**`` matches everything under ``a``). ``tests/proxy/test_proxy_fields.py``
walks full request and answer shapes (chat, completions, Responses, streamed and not), plants a
harmful text in every string field in turn, and checks that each one is either blocked or
listed here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

__all__ = ["UNMODERATED", "is_unmoderated", "moderated_texts", "string_fields"]

# JSON-schema keywords and formats are vocabulary, not text (descriptions, titles, enum values,
# property names and defaults are moderated).
_SCHEMA_WORDS = (
    "**.type",
    "**.format",
    "**.$ref",
    "**.$schema",
    "**.required[]",
    "**.pattern",
)
_MEDIA = "media the classifier cannot read: refused unless ALLOW_MEDIA"
_ID = "an identifier chosen by the API or the caller, not text for or from the model"
_ROUTING = "routing or generation settings the model never reads"
_USER_ID = "an end-user or cache identifier for the upstream, never shown to the model"
_METADATA = "stored with the call for the caller, never shown to the model"
_LOGPROBS = (
    "the tokens of the choice's text, which is checked; dropped with a blocked choice (streams "
    "release them with their text)"
)
_ECHO = "the request's own value echoed back; it was checked before the request was forwarded"


def _schema(prefix: str) -> dict[str, str]:
    return {f"{prefix}.{word}": "a JSON-schema keyword, not text" for word in _SCHEMA_WORDS}


_CHAT_MESSAGE = {
    "role": _ID,
    "tool_call_id": _ID,
    "tool_calls[].id": _ID,
    "tool_calls[].type": _ID,
    "content[].type": "the part's kind",
    "content[].image_url.url": _MEDIA,
    "content[].image_url.detail": _MEDIA,
    "content[].input_audio.data": _MEDIA,
    "content[].input_audio.format": _MEDIA,
    "content[].file.file_data": _MEDIA,
    "content[].file.file_id": _MEDIA,
    "audio.id": _ID,
}

_CHAT_SETTINGS = {
    "model": _ROUTING,
    "service_tier": _ROUTING,
    "reasoning_effort": _ROUTING,
    "verbosity": _ROUTING,
    "modalities[]": _ROUTING,
    "audio.voice": _ROUTING,
    "audio.format": _ROUTING,
    "stop": "stop sequences end the generation; the model never reads them",
    "stop[]": "stop sequences end the generation; the model never reads them",
    "user": _USER_ID,
    "safety_identifier": _USER_ID,
    "prompt_cache_key": _USER_ID,
    "metadata.*": _METADATA,
    "tool_choice": _ROUTING,
    "tool_choice.type": _ROUTING,
    "function_call": _ROUTING,
    "tools[].type": _ID,
    "response_format.type": _ROUTING,
    "prediction.type": "the prediction's kind (its content is checked)",
    "prediction.content[].type": "the part's kind",
    **_schema("tools[].function.parameters"),
    **_schema("functions[].parameters"),
    **_schema("response_format.json_schema.schema"),
}

_CHAT_ANSWER_META = {
    "id": _ID,
    "object": _ID,
    "model": _ROUTING,
    "system_fingerprint": _ID,
    "service_tier": _ROUTING,
    "created": _ID,
    "usage.**": "token counts",
    "obfuscation": "random padding against length side channels, no text",
    "choices[].finish_reason": "why generation stopped",
    "choices[].logprobs.**": _LOGPROBS,
}

_RESPONSES_ITEM = {
    "type": "the item's kind",
    "id": _ID,
    "call_id": _ID,
    "status": "the item's state",
    "role": _ID,
    "content[].type": "the part's kind",
    "content[].image_url": _MEDIA,
    "content[].detail": _MEDIA,
    "content[].file_id": _MEDIA,
    "content[].file_data": _MEDIA,
    "content[].file_url": _MEDIA,
    "content[].input_audio.data": _MEDIA,
    "content[].input_audio.format": _MEDIA,
    "content[].annotations[].type": "the annotation's kind",
    "content[].logprobs.**": _LOGPROBS,
    "summary[].type": "the part's kind",
    "encrypted_content": "reasoning the upstream encrypted for itself; nobody can read it here",
}

_RESPONSES_SETTINGS = {
    "model": _ROUTING,
    "previous_response_id": _ID,
    "conversation": _ID,
    "conversation.id": _ID,
    "prompt.id": _ID,
    "prompt.version": _ID,
    "include[]": _ROUTING,
    "truncation": _ROUTING,
    "service_tier": _ROUTING,
    "user": _USER_ID,
    "safety_identifier": _USER_ID,
    "prompt_cache_key": _USER_ID,
    "metadata.*": _METADATA,
    "reasoning.effort": _ROUTING,
    "reasoning.summary": _ROUTING,
    "reasoning.generate_summary": _ROUTING,
    "text.format.type": _ROUTING,
    "text.verbosity": _ROUTING,
    "tool_choice": _ROUTING,
    "tool_choice.type": _ROUTING,
    "tools[].type": _ID,
    **_schema("tools[].parameters"),
    **_schema("text.format.schema"),
}

#: Per shape: the string fields that are not moderated, and why. Everything else is.
UNMODERATED: dict[str, dict[str, str]] = {
    "chat.request": {
        **_CHAT_SETTINGS,
        **{f"messages[].{k}": v for k, v in _CHAT_MESSAGE.items()},
        "prediction.content[].type": "the part's kind",
    },
    "chat.answer": {
        **_CHAT_ANSWER_META,
        **{f"choices[].message.{k}": v for k, v in _CHAT_MESSAGE.items()},
        "choices[].message.audio.data": "audio the classifier cannot read (its transcript is "
        "checked)",
        "choices[].message.audio.expires_at": _ID,
        "choices[].message.annotations[].type": "the annotation's kind",
    },
    "chat.chunk": {
        **_CHAT_ANSWER_META,
        **{f"choices[].delta.{k}": v for k, v in _CHAT_MESSAGE.items()},
        "choices[].delta.audio.data": "audio the classifier cannot read (its transcript is "
        "checked)",
    },
    "completions.request": {
        "model": _ROUTING,
        "stop": "stop sequences end the generation; the model never reads them",
        "stop[]": "stop sequences end the generation; the model never reads them",
        "user": _USER_ID,
    },
    "completions.answer": {**_CHAT_ANSWER_META},
    "completions.chunk": {**_CHAT_ANSWER_META},
    "embeddings.request": {
        "model": _ROUTING,
        "encoding_format": _ROUTING,
        "user": _USER_ID,
    },
    "responses.request": {
        **_RESPONSES_SETTINGS,
        **{f"input[].{k}": v for k, v in _RESPONSES_ITEM.items()},
    },
    "responses.answer": {
        **{k: _ECHO for k in _RESPONSES_SETTINGS},
        **{f"output[].{k}": v for k, v in _RESPONSES_ITEM.items()},
        "id": _ID,
        "object": _ID,
        "status": "the response's state",
        "created_at": _ID,
        "incomplete_details.reason": "why the response is incomplete",
        "error.code": "the upstream's error code",
        "instructions": _ECHO,
        "tools.**": _ECHO,
        "text.**": _ECHO,
        "usage.**": "token counts",
        "billing.payer": _ID,
        "background": _ROUTING,
    },
}


def _split(path: str) -> tuple[str, ...]:
    return tuple(path.replace("[]", ".[]").split("."))


@lru_cache(maxsize=4096)
def _listed(shape: str, path: tuple[str, ...]) -> bool:
    return any(_match(_split(pattern), path) for pattern in UNMODERATED[shape])


def _match(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    if not pattern:
        return not path
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_match(rest, path[i:]) for i in range(len(path) + 1))
    if not path:
        return False
    if head == "*" and path[0] != "[]":
        return _match(rest, path[1:])
    return head == path[0] and _match(rest, path[1:])


def is_unmoderated(shape: str, path: str | tuple[str, ...]) -> bool:
    """True when ``path`` (``a.b[].c``) is on the shape's list of unmoderated fields."""
    return _listed(shape, _split(path) if isinstance(path, str) else path)


def string_fields(
    value: Any, path: tuple[str, ...] = (), *, _in_properties: bool = False
) -> Iterator[tuple[tuple[str, ...], str]]:
    """Every string in a parsed JSON value, with its path (list items as ``[]``), in document
    order. The keys of a ``properties`` object (JSON-schema property names) come as strings of
    the path ``....properties.*``."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            key = str(key)
            if _in_properties:
                yield (*path, "*"), key
            yield from string_fields(item, (*path, key), _in_properties=key == "properties")
    elif isinstance(value, list):
        for item in value:
            yield from string_fields(item, (*path, "[]"))


def moderated_texts(shape: str, value: Any, prefix: str = "") -> list[str]:
    """The strings of ``value`` to moderate, in document order: all but the listed ones.

    Args:
        shape: a key of ``UNMODERATED`` (``chat.request``, ``chat.answer``, ...).
        value: the parsed JSON (the whole body, or a part of it found at ``prefix``).
        prefix: where ``value`` sits in the shape (``choices[]`` for one choice).
    """
    start = _split(prefix) if prefix else ()
    return [text for path, text in string_fields(value, start) if text and not _listed(shape, path)]
