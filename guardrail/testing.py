"""Test helpers shipped with the package: a scripted ``FakeClassifier`` (registered as ``fake``).

Like httpx's ``MockTransport``: use it in your own tests, or in a policy
(``classifier: {name: fake, options: {unsafe: 0.9}}``) to measure the cost of everything but the
model.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from pydantic import BaseModel, ConfigDict, Field

from guardrail.errors import ClassifierError
from guardrail.registry import register_classifier
from guardrail.taxonomy import Taxonomy
from guardrail.types import Sample, ScoreSet

__all__ = ["FakeClassifier"]


class _Scripted(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    unsafe: float = Field(ge=0, le=1)
    categories: dict[str, float] = Field(default_factory=dict)
    refusal: float | None = Field(None, ge=0, le=1)


@register_classifier("fake")
class FakeClassifier:
    """A classifier whose scores are scripted.

    Scores come from, in order: ``fn(sample)`` if given; the first ``by_substring`` key found in
    the text; else the default ``unsafe`` / ``categories``. ``error`` makes every call raise
    ``ClassifierError``; ``delay_s`` sleeps per call. The last ``max_recorded_calls`` calls are
    recorded in ``calls`` (bounded, so long runs don't grow memory).
    """

    name = "fake"

    class Options(BaseModel):
        """Options of the ``fake`` classifier."""

        model_config = ConfigDict(frozen=True, extra="forbid")

        unsafe: float = Field(0.0, ge=0, le=1, description="Default unsafe score.")
        categories: dict[str, float] = Field(default_factory=dict, description="Default scores.")
        refusal: float | None = Field(None, ge=0, le=1, description="Default refusal score.")
        by_substring: dict[str, _Scripted] = Field(
            default_factory=dict, description="Scores for texts containing a substring."
        )
        error: str | None = Field(None, description="Raise ClassifierError with this message.")
        delay_s: float = Field(0.0, ge=0, description="Seconds to sleep per call.")
        max_recorded_calls: int = Field(
            1000, ge=0, description="How many recent calls `calls` keeps."
        )

    def __init__(
        self,
        options: Options | None = None,
        *,
        taxonomy: Taxonomy | None = None,
        fn: Callable[[Sample], ScoreSet] | None = None,
        **kwargs: object,
    ) -> None:
        self.options = options or self.Options.model_validate(kwargs)
        self.fn = fn
        self._default = _Scripted(
            unsafe=self.options.unsafe,
            categories=self.options.categories,
            refusal=self.options.refusal,
        )
        self.calls: deque[list[Sample]] = deque(maxlen=self.options.max_recorded_calls)
        self._lock = threading.Lock()

    def score(self, samples: Sequence[Sample]) -> list[ScoreSet]:
        """Return the scripted scores."""
        with self._lock:
            self.calls.append(list(samples))
        opts = self.options
        if opts.delay_s:
            time.sleep(opts.delay_s)
        if opts.error is not None:
            raise ClassifierError(opts.error)
        return [self._one(s) for s in samples]

    def _one(self, sample: Sample) -> ScoreSet:
        if self.fn is not None:
            return self.fn(sample)
        scripted = next(
            (v for k, v in self.options.by_substring.items() if k in sample.text), self._default
        )
        return ScoreSet(
            unsafe=scripted.unsafe,
            categories=dict(scripted.categories),
            refusal=scripted.refusal,
            language=sample.language,
            classifier=self.name,
        )

    @property
    def texts(self) -> list[str]:
        """Every text scored so far, in order."""
        return [s.text for batch in self.calls for s in batch]
