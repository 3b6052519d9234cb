"""OpenAI-compatible request and response models.

Request models validate only the fields the proxy reads and allow every other field
(``extra="allow"``): the proxy forwards the caller's original bytes, so fields it does not know
pass through untouched. They also document the API in the app's OpenAPI schema.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ChatCompletionRequest",
    "ChatMessage",
    "CompletionRequest",
    "ContentPart",
    "EmbeddingRequest",
    "FunctionCall",
    "ModerationPart",
    "ModerationRequest",
    "ModerationResponse",
    "ModerationResult",
    "ResponsesRequest",
    "ToolCall",
]

_OPEN = ConfigDict(extra="allow")
# Token-id prompts: the classifier reads text, so these are refused, but they are valid shapes.
TokenIds = list[int]


class ContentPart(BaseModel):
    """One part of a message's content: text, or media (image, audio, file)."""

    model_config = _OPEN

    type: str = Field(description="text, image_url, input_audio, file, refusal, ...")
    text: str | None = Field(None, description="The text of a text part.")
    refusal: str | None = Field(None, description="The text of a refusal part.")


class FunctionCall(BaseModel):
    """A function call: its name and JSON-encoded arguments."""

    model_config = _OPEN

    name: str | None = None
    arguments: str | None = None


class ToolCall(BaseModel):
    """A tool call made by the assistant."""

    model_config = _OPEN

    id: str | None = None
    type: str | None = None
    function: FunctionCall | None = None


class ChatMessage(BaseModel):
    """One chat message (any role); tool calls and tool results are text too."""

    model_config = _OPEN

    role: str = Field(description="system, developer, user, assistant, tool or function.")
    content: str | list[ContentPart] | None = Field(None, description="Text or content parts.")
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    function_call: FunctionCall | None = None
    refusal: str | None = None


class ChatCompletionRequest(BaseModel):
    """``POST /v1/chat/completions``."""

    model_config = _OPEN

    model: str = Field(description="Model name, passed upstream.")
    messages: list[ChatMessage] = Field(min_length=1, description="The conversation.")
    stream: bool | None = Field(None, description="Stream the answer as server-sent events.")


class CompletionRequest(BaseModel):
    """``POST /v1/completions`` (legacy text completions)."""

    model_config = _OPEN

    model: str
    prompt: str | list[str] | TokenIds | list[TokenIds] = Field(
        description="Prompt text(s); token-id prompts are refused (they cannot be moderated)."
    )
    suffix: str | None = None
    stream: bool | None = None


class EmbeddingRequest(BaseModel):
    """``POST /v1/embeddings``: the input is moderated before it is forwarded."""

    model_config = _OPEN

    model: str
    input: str | list[str] | TokenIds | list[TokenIds]


class ResponsesRequest(BaseModel):
    """``POST /v1/responses`` (streamed or not): input and output are moderated."""

    model_config = _OPEN

    model: str
    input: str | list[dict[str, Any]] = Field(description="Text, or a list of input items.")
    instructions: str | None = None
    stream: bool | None = None


class ModerationPart(BaseModel):
    """A multi-modal moderation input part (only text parts can be classified here)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["text", "image_url"]
    text: str | None = None
    image_url: dict[str, Any] | None = None


class ModerationRequest(BaseModel):
    """``POST /v1/moderations``."""

    model_config = ConfigDict(extra="forbid")

    input: str | list[str] | list[ModerationPart] = Field(
        description="One text, a list of texts (one result each), or content parts (one result)."
    )
    model: str | None = Field(None, description="Accepted for compatibility; ignored.")


class ModerationResult(BaseModel):
    """One moderation result, keyed by OpenAI's 13 category names."""

    flagged: bool
    categories: dict[str, bool]
    category_scores: dict[str, float]
    category_applied_input_types: dict[str, list[str]]


class ModerationResponse(BaseModel):
    """The ``/v1/moderations`` answer."""

    id: str
    model: str
    results: list[ModerationResult]
