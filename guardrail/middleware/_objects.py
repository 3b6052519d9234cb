"""Result objects for the middleware: the report attached to results, copies with changes, and
refusals built as real ``openai`` types (imported lazily: the core does not need openai)."""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from guardrail.errors import GuardrailError
from guardrail.middleware._texts import get
from guardrail.types import Action, Verdict

__all__ = ["GuardReport", "attach", "replace"]

CONTENT_FILTER = "content_filter"


@dataclass
class GuardReport:
    """What the guard decided about one wrapped call; readable as ``result.guardrail``.

    Attributes:
        prompt: the verdict on the prompt side (None when it was not checked).
        choices: the verdict on each response choice (or stream choice), by index.
    """

    prompt: Verdict | None = None
    choices: dict[int, Verdict] = field(default_factory=dict)

    def record(self, index: int, verdict: Verdict) -> None:
        """Keep ``verdict`` for choice ``index`` unless a more severe one is already there
        (a later verdict of equal severity replaces the earlier one)."""
        old = self.choices.get(index)
        if old is None or verdict.action.severity >= old.action.severity:
            self.choices[index] = verdict

    @property
    def response(self) -> Verdict | None:
        """The most severe verdict over the response choices."""
        return _most_severe(list(self.choices.values()))

    @property
    def verdicts(self) -> list[Verdict]:
        """Every verdict: the prompt's first, then the choices' in index order."""
        head = [self.prompt] if self.prompt is not None else []
        return head + [self.choices[i] for i in sorted(self.choices)]

    @property
    def action(self) -> Action:
        """The most severe action over the call."""
        return Action.most_severe(*(v.action for v in self.verdicts))

    @property
    def blocked(self) -> bool:
        """True when any side was blocked."""
        return self.action is Action.BLOCK

    @property
    def flagged(self) -> bool:
        """True when the most severe action is flag."""
        return self.action is Action.FLAG


def _most_severe(verdicts: list[Verdict]) -> Verdict | None:
    return max(verdicts, key=lambda v: v.action.severity, default=None)


def attach(obj: Any, report: GuardReport) -> Any:
    """Attach ``report`` as ``obj.guardrail`` (not serialised with the object); returns ``obj``."""
    # object.__setattr__ keeps it out of pydantic's fields and extras, so to_json() and
    # model_dump() are unchanged. Dicts and slotted objects cannot carry it: the report reaches
    # the caller through on_verdict.
    with contextlib.suppress(AttributeError, TypeError):
        object.__setattr__(obj, "guardrail", report)
    return obj


def replace(obj: Any, **changes: Any) -> Any:
    """A copy of ``obj`` (mapping, pydantic model or plain object) with some fields changed."""
    if isinstance(obj, Mapping):
        return {**obj, **changes}
    model_copy = getattr(obj, "model_copy", None)
    if callable(model_copy):
        return model_copy(update=changes)
    new = copy.copy(obj)
    for key, value in changes.items():
        setattr(new, key, value)
    return new


# -- blocked parts of results --------------------------------------------------------------


# Message fields that may carry model text besides content and tool calls: cleared with a block.
_MESSAGE_TEXT = ("audio", "parsed", "refusal", "annotations", "reasoning_content", "reasoning")


def refuse_chat_choice(choice: Any, message: str) -> Any:
    """The choice with its message replaced by ``message`` and finish_reason content_filter.

    Nothing of the blocked answer stays: tool calls, refusal, reasoning, annotations, fields the
    openai types do not know, and the choice's ``logprobs`` (their tokens spell the answer).
    """
    old = get(choice, "message")
    changes: dict[str, Any] = {"content": message, "tool_calls": None, "function_call": None}
    for name in (*_MESSAGE_TEXT, *_extra_fields(old)):
        if get(old, name) is not None:
            changes[name] = None
    return replace(
        choice, message=replace(old, **changes), finish_reason=CONTENT_FILTER, logprobs=None
    )


def refuse_completion_choice(choice: Any, message: str) -> Any:
    """A legacy completions choice with its text replaced (and its logprobs dropped)."""
    return replace(choice, text=message, finish_reason=CONTENT_FILTER, logprobs=None)


def _extra_fields(obj: Any) -> list[str]:
    """Fields outside a pydantic model's declared ones (``model_extra``), or a mapping's keys
    beyond a chat message's known ones."""
    if isinstance(obj, Mapping):
        return [k for k in obj if k not in ("role", "content", "tool_calls", "function_call")]
    extra = getattr(obj, "model_extra", None)
    return list(extra) if isinstance(extra, dict) else []


def end_chat_choice(choice: Any) -> Any:
    """A stream chunk choice that carries nothing but finish_reason content_filter."""
    old = get(choice, "delta")
    cleared = {name: None for name in _MESSAGE_TEXT if get(old, name) is not None}
    delta = replace(old, content=None, role=None, tool_calls=None, function_call=None, **cleared)
    return replace(choice, delta=delta, finish_reason=CONTENT_FILTER)


def end_completion_choice(choice: Any) -> Any:
    """A legacy completions stream choice that ends with finish_reason content_filter."""
    return replace(choice, text="", finish_reason=CONTENT_FILTER)


# -- whole refusals, as openai types --------------------------------------------------------


def _require_openai() -> None:
    try:
        import openai  # noqa: F401 - only checking that it is importable
    except ImportError as e:
        raise GuardrailError(
            "on_block='refuse' returns openai result objects; pip install openai "
            "(or use on_block='raise')"
        ) from e


def _ids() -> tuple[str, int]:
    return f"guardrail-{time.time_ns():x}", int(time.time())


def chat_refusal(model: str, n: int, message: str) -> Any:
    """A ``ChatCompletion`` whose choices all carry ``message`` (finish_reason content_filter)."""
    _require_openai()
    from openai.types.chat import ChatCompletion

    ident, created = _ids()
    return ChatCompletion.model_validate(
        {
            "id": ident,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": message},
                    "finish_reason": CONTENT_FILTER,
                }
                for i in range(n)
            ],
        }
    )


def chat_refusal_chunks(model: str, n: int, message: str) -> list[Any]:
    """The chunks of a streamed refusal: the message per choice, then content_filter."""
    _require_openai()
    from openai.types.chat import ChatCompletionChunk

    ident, created = _ids()

    def chunk(index: int, delta: dict[str, Any], finish: str | None) -> Any:
        return ChatCompletionChunk.model_validate(
            {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
            }
        )

    heads = [chunk(i, {"role": "assistant", "content": message}, None) for i in range(n)]
    return heads + [chunk(i, {}, CONTENT_FILTER) for i in range(n)]


def completion_refusal(model: str, n: int, message: str) -> Any:
    """A legacy ``Completion`` refusal."""
    _require_openai()
    from openai.types import Completion

    ident, created = _ids()
    return Completion.model_validate(
        {
            "id": ident,
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": [
                {"index": i, "text": message, "finish_reason": CONTENT_FILTER, "logprobs": None}
                for i in range(n)
            ],
        }
    )


def completion_refusal_chunks(model: str, n: int, message: str) -> list[Any]:
    """A streamed legacy completions refusal: one chunk per choice."""
    whole = completion_refusal(model, n, message)
    return [replace(whole, choices=[c]) for c in whole.choices]


def response_refusal(model: str, message: str | None, base: Any = None) -> Any:
    """A Responses API ``Response`` carrying ``message`` (no output when None), status
    ``incomplete`` with ``incomplete_details.reason == "content_filter"``. ``base`` keeps its
    id and settings."""
    _require_openai()
    from openai.types.responses import Response

    ident, created = _ids()
    output = [
        {
            "type": "message",
            "id": f"msg_{ident}",
            "status": "incomplete",
            "role": "assistant",
            "content": [{"type": "output_text", "text": message, "annotations": []}],
        }
    ]
    if message is None:
        output = []
    fields: dict[str, Any] = {
        "id": ident,
        "object": "response",
        "created_at": created,
        "model": model,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
    }
    if base is not None and callable(getattr(base, "model_dump", None)):
        fields = base.model_dump(exclude={"output", "status", "incomplete_details", "usage"})
    fields.update(output=output, status="incomplete", incomplete_details={"reason": CONTENT_FILTER})
    return Response.construct(**fields)


def response_incomplete_event(model: str, base: Any, sequence_number: int) -> Any:
    """The ``response.incomplete`` event that ends a blocked Responses stream."""
    from openai.types.responses import ResponseIncompleteEvent

    response = response_refusal(model, None, base=base)
    return ResponseIncompleteEvent.construct(
        type="response.incomplete", response=response, sequence_number=sequence_number
    )


def response_refusal_events(model: str, message: str) -> list[Any]:
    """A streamed Responses refusal: the message as one text delta, then ``response.incomplete``."""
    _require_openai()
    from openai.types.responses import ResponseIncompleteEvent, ResponseTextDeltaEvent

    response = response_refusal(model, message)
    delta = ResponseTextDeltaEvent.construct(
        type="response.output_text.delta",
        item_id=response.output[0].id,
        output_index=0,
        content_index=0,
        delta=message,
        logprobs=[],
        sequence_number=0,
    )
    end = ResponseIncompleteEvent.construct(
        type="response.incomplete", response=response, sequence_number=1
    )
    return [delta, end]
