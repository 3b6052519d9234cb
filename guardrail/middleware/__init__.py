"""Guard an OpenAI-compatible client, or any ``prompt -> text`` function, with one line.

::

    from openai import OpenAI
    from guardrail import Guard

    guard = Guard.from_policy("default")
    client = guard.wrap(OpenAI())          # same API, same return types
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=[...])
    reply.guardrail.action                 # allow / flag (a block raises ContentBlocked)

    for chunk in client.chat.completions.create(..., stream=True):
        ...                                # text arrives only after a passing check

    @guard.protect
    def answer(prompt: str) -> str: ...

Before a call the prompt side is checked (the last user message with the conversation as
context, plus every tool or retrieved-document message); a block makes no upstream call. After
it every choice (content, tool-call arguments, audio transcript) is checked. Streams are held
back and released only after a passing check (``guardrail.streaming``). Everything else that
could carry text to or from a model (raw responses, the Realtime, Assistants, Batch and audio
APIs, raw HTTP methods, ...) is refused with ``UnguardedCallError`` unless listed in
``allow_unguarded``; methods that cannot reach a model (``models.list``, ``files``,
``embeddings``, ...) pass through.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from guardrail.middleware._calls import moderated
from guardrail.middleware._context import Context, WrapOptions
from guardrail.middleware._objects import GuardReport
from guardrail.middleware._protect import protect_function
from guardrail.middleware._texts import UnguardedCallError

if TYPE_CHECKING:
    from guardrail.guard import Guard

__all__ = ["GuardReport", "GuardedClient", "UnguardedCallError", "WrapOptions", "protect", "wrap"]

# Moderated methods, by attribute path, and what kind of call each is.
_MODERATED = {
    ("chat", "completions", "create"): "chat",
    ("chat", "completions", "parse"): "chat",
    ("completions", "create"): "completion",
    ("responses", "create"): "responses",
}
_CONTAINERS = {("chat",), ("chat", "completions"), ("completions",), ("responses",)}
# Methods on moderated resources that reach the model another way: refused, with the way out.
_REFUSED_METHODS = {
    ("chat", "completions", "stream"): "use chat.completions.create(stream=True)",
    ("responses", "stream"): "use responses.create(stream=True)",
    ("responses", "parse"): "use responses.create()",
    ("responses", "compact"): "it has the model rewrite a conversation unchecked",
    ("responses", "connect"): "realtime connections are not moderated",
}
_RAW = {
    "with_raw_response": "raw responses skip the wrapper's checks; use the normal methods",
    "with_streaming_response": "raw streamed responses skip the wrapper's checks; use "
    "create(stream=True)",
}
# Top-level openai resources that never carry generated text or prompts to a model.
_PASSTHROUGH = frozenset(
    {"models", "files", "uploads", "embeddings", "moderations", "webhooks", "vector_stores"}
)
# Known names that carry text to or from a model (for clients that are not openai's too).
_TEXT_RESOURCES = frozenset(
    {
        "assistants",
        "audio",
        "batches",
        "beta",
        "conversations",
        "evals",
        "fine_tuning",
        "images",
        "live",
        "realtime",
        "threads",
        "videos",
    }
)
_RAW_HTTP = frozenset({"post", "put", "patch", "request"})
_REWRAP = frozenset({"with_options", "copy"})


def _refuse(path: tuple[str, ...], why: str) -> UnguardedCallError:
    return UnguardedCallError(
        f"{'.'.join(path)} is not available on a guarded client: {why}. "
        "To let it through unchecked on purpose, pass allow_unguarded=[...] to guard.wrap()."
    )


def _is_openai_resource(value: object) -> bool:
    return type(value).__module__.startswith("openai.resources")


class _GuardedResource:
    """An attribute proxy: moderated methods wrapped, text-carrying ones refused, rest passed."""

    def __init__(self, target: Any, path: tuple[str, ...], ctx: Context) -> None:
        object.__setattr__(self, "_guarded_target", target)
        object.__setattr__(self, "_guarded_path", path)
        object.__setattr__(self, "_guarded_ctx", ctx)

    def __getattr__(self, name: str) -> Any:
        target, ctx = self._guarded_target, self._guarded_ctx
        if name.startswith("_"):
            return getattr(target, name)
        path = (*self._guarded_path, name)
        if name in _RAW and not (len(path) == 1 and name in ctx.options.allow_unguarded):
            raise _refuse(path, _RAW[name])
        if path in _REFUSED_METHODS:
            raise _refuse(path, _REFUSED_METHODS[path])
        if path in _MODERATED:
            return moderated(ctx, _MODERATED[path], getattr(target, name))
        value = getattr(target, name)
        if path in _CONTAINERS:
            return _GuardedResource(value, path, ctx)
        if len(path) == 1:
            return self._top_level(name, value)
        return value

    def _top_level(self, name: str, value: Any) -> Any:
        ctx: Context = self._guarded_ctx
        if name in _REWRAP and callable(value):
            # with_options() / copy() build a new client: guard that one too.
            def rewrap(*args: Any, **kwargs: Any) -> GuardedClient:
                return GuardedClient(value(*args, **kwargs), ctx)

            return rewrap
        if name in ctx.options.allow_unguarded or name in _PASSTHROUGH:
            return value
        if name in _TEXT_RESOURCES or name in _RAW_HTTP:
            raise _refuse((name,), "it carries text to or from a model and is not moderated")
        if _is_openai_resource(value):
            raise _refuse((name,), "it is an API resource the wrapper does not moderate")
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._guarded_target, name, value)

    def __dir__(self) -> list[str]:
        return dir(self._guarded_target)

    def __repr__(self) -> str:
        return f"<guarded {self._guarded_target!r}>"


class GuardedClient(_GuardedResource):
    """A client whose model calls go through a guard. Built by ``guard.wrap(client)``."""

    def __init__(self, client: Any, ctx: Context) -> None:
        super().__init__(client, (), ctx)

    # isinstance(wrapped, OpenAI) stays true (as with wrapt's ObjectProxy), so libraries that
    # check the client's type accept the guarded one; type() still says GuardedClient.
    @property  # type: ignore[misc]  # a read-only __class__ is the point: report the target's
    def __class__(self) -> type[Any]:
        return type(self._guarded_target)

    def __enter__(self) -> GuardedClient:
        self._guarded_target.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self._guarded_target.__exit__(*exc)

    async def __aenter__(self) -> GuardedClient:
        await self._guarded_target.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._guarded_target.__aexit__(*exc)


def wrap(guard: Guard, client: Any, **options: Any) -> GuardedClient:
    """Wrap an OpenAI-compatible client (``OpenAI``, ``AsyncOpenAI`` or the same shape).

    Args:
        guard: the guard whose policy decides.
        client: the client to wrap; it is not modified.
        **options: see ``WrapOptions`` (``on_block``, ``prompt_messages``, ``untrusted_roles``,
            ``check_every``, ``at_sentences``, ``on_verdict``, ``allow_unguarded``).

    Returns:
        A client with the same API and return types; results carry ``.guardrail``
        (a ``GuardReport``).

    Raises:
        ConfigError: an unknown option or a bad option value.
    """
    return GuardedClient(client, Context(guard, WrapOptions.build(options)))


def protect(guard: Guard, fn: Callable[..., Any] | None = None, **options: Any) -> Any:
    """Guard a ``prompt -> str`` function (sync, async, generator or async generator).

    Usable as ``@guard.protect`` or ``@guard.protect(on_block="refuse")``. The prompt is the
    argument named ``prompt`` or else the first positional argument.

    Args:
        guard: the guard whose policy decides.
        fn: the function (None when used with options as a decorator factory).
        **options: ``on_block``, ``check_every``, ``at_sentences``, ``on_verdict``.

    Returns:
        The guarded function, or a decorator when ``fn`` is None.

    Raises:
        ConfigError: an unknown option or a bad option value.
    """
    ctx = Context(guard, WrapOptions.build(options))
    if fn is None:
        return lambda f: protect_function(ctx, f)
    return protect_function(ctx, fn)
