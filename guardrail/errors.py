"""Exceptions raised by guardrail.

```
GuardrailError
 ├ ConfigError               bad policy / taxonomy / options, at load time (a ValueError)
 │  └ UnknownClassifierError  a classifier name that no built-in or plugin provides
 ├ ClassifierError           a backend failed at run time
 │  └ ClassifierTimeout      a backend took longer than allowed
 ├ ContentBlocked            raised only by adapters and middleware that opt in
 └ UnguardedCallError        the middleware refuses a call that would reach the model unchecked
```

A blocked text is *data* (a `Verdict` with `action=BLOCK`) in the core; only adapters turn it
into an exception or an HTTP error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from guardrail.types import Verdict

__all__ = [
    "ClassifierError",
    "ClassifierTimeout",
    "ConfigError",
    "ContentBlocked",
    "GuardrailError",
    "UnguardedCallError",
    "UnknownClassifierError",
    "install_hint",
]


def install_hint(extra: str) -> str:
    """How to install an optional extra: guardrail-sdk is installed from a checkout or a built
    wheel (no package index has it), so ``pip install "guardrail-sdk[extra]"`` would fail."""
    return (
        f'pip install ".[{extra}]" in a checkout of guardrail-sdk '
        f'(from a built wheel: pip install "guardrail_sdk-<version>-py3-none-any.whl[{extra}]")'
    )


class GuardrailError(Exception):
    """Root of every exception this package raises on purpose."""


class ConfigError(GuardrailError, ValueError):
    """A policy, taxonomy, mapping or classifier option is invalid."""


class UnknownClassifierError(ConfigError):
    """No classifier is registered under the requested name."""

    def __init__(self, name: str, known: list[str], *, where: str = "") -> None:
        self.name = name
        self.known = sorted(known)
        prefix = f"{where}: " if where else ""
        super().__init__(
            f"{prefix}unknown classifier {name!r}; "
            f"known classifiers: {', '.join(self.known) or '(none)'}"
        )


class ClassifierError(GuardrailError):
    """A classifier failed while scoring.

    Attributes:
        raw: the raw model output that could not be parsed, when there is one.
    """

    def __init__(self, message: str, *, raw: str | None = None) -> None:
        super().__init__(message)
        self.raw = raw


class ClassifierTimeout(ClassifierError):
    """A classifier did not answer within the allowed time."""


class ContentBlocked(GuardrailError):
    """Raised by adapters that opt in, when a verdict blocks.

    Attributes:
        verdict: the verdict that blocked.
        stage: ``pre_call``, ``post_call`` or ``stream_chunk``.
    """

    def __init__(self, verdict: Verdict, *, stage: str = "pre_call") -> None:
        self.verdict = verdict
        self.stage = stage
        fired = ", ".join(c.category for c in verdict.categories) or "unsafe"
        super().__init__(f"content blocked at {stage} ({fired}; decided by {verdict.decided_by})")


class UnguardedCallError(GuardrailError):
    """A method or request that would reach the model unchecked; the wrapper refuses it."""
