"""``cascade``: a fast classifier first, a stronger one only where the fast one is unsure.

A sample goes to the second stage when the first stage's ``unsafe`` score lies in
``[escalate_from, escalate_below)``, when its language is not one of ``languages``, or (with
``escalate_outside_coverage``) when the first stage's scores say ``coverage: outside``.
A verdict's ``coverage`` is that of the stage whose scores it carries: an escalated sample has
the second stage's (None when that stage does not say), since escalating is how a cascade
covers what its first stage does not; the first stage's verdict stays in the note.
Every ``ScoreSet`` records the stage that decided in ``stage`` (the engine reports it in the
verdict's ``decided_by``); escalated ones also say why in ``notes``. With ``max_latency_ms``, a
second stage that has not answered when the budget is spent is not waited for: the escalated
samples keep the first stage's scores, with stage ``fallback:first:NAME`` and a note.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator

from guardrail.classifiers.base import Classifier
from guardrail.language import UNDETERMINED, normalize_language
from guardrail.policy import ClassifierSpec
from guardrail.registry import create_classifier, register_classifier, scored_categories
from guardrail.taxonomy import Taxonomy
from guardrail.types import Sample, ScoreSet

__all__ = ["CascadeClassifier"]


@register_classifier("cascade")
class CascadeClassifier:
    """Two classifiers in sequence.

    Args:
        options: the two stages and when to escalate.
        taxonomy: the policy's taxonomy (passed to both stages).
        first: use this classifier as the first stage instead of building ``options.first``.
        second: likewise for the second stage.

    Raises:
        ConfigError: a stage's name or options are invalid.
    """

    name = "cascade"

    class Options(BaseModel):
        """Options of the ``cascade`` classifier."""

        model_config = ConfigDict(frozen=True, extra="forbid")

        first: ClassifierSpec = Field(description="The fast classifier (name and options).")
        second: ClassifierSpec = Field(description="The stronger classifier.")
        escalate_from: float = Field(
            0.2, ge=0, le=1, description="Escalate when the first score is at least this..."
        )
        escalate_below: float = Field(0.8, ge=0, le=1, description="...and below this.")
        languages: list[str] | None = Field(
            None,
            description="Languages the first stage covers; others always escalate "
            "(None: every language is covered).",
        )
        escalate_outside_coverage: bool = Field(
            False,
            description="Also escalate when the first stage says the language is outside its "
            "coverage (ScoreSet.coverage == 'outside'), whatever the score.",
        )
        max_latency_ms: float | None = Field(
            None,
            gt=0,
            description="Budget for one score call, both stages included; when the second "
            "stage has not answered by then, the first stage's scores are used (None: wait).",
        )

        @model_validator(mode="after")
        def _ordered(self) -> CascadeClassifier.Options:
            if self.escalate_from > self.escalate_below:
                raise ValueError("escalate_from must not exceed escalate_below")
            from guardrail.registry import validate_options

            # Each stage's options are checked when the policy loads, not at the first escalation.
            validate_options(self.first)
            validate_options(self.second)
            return self

    def __init__(
        self,
        options: Options,
        *,
        taxonomy: Taxonomy,
        first: Classifier | None = None,
        second: Classifier | None = None,
    ) -> None:
        self.options = options
        self.first = first or create_classifier(options.first, taxonomy=taxonomy)
        self._second = second
        self._taxonomy = taxonomy
        self._languages = (
            None
            if options.languages is None
            else {normalize_language(code) for code in options.languages}
        )
        # The second stage runs here when it has a latency budget; a call that overran keeps
        # its worker until it returns (threads cannot be stopped), so two workers at most.
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._build_lock = threading.Lock()
        # The union of the stages' (the second's from its options: it is built on first use).
        firsts = getattr(self.first, "scored_categories", None)
        seconds = (
            getattr(second, "scored_categories", None)
            if second is not None
            else scored_categories(options.second, taxonomy)
        )
        self.scored_categories = _union(firsts, seconds)

    @classmethod
    def scored_categories_for(cls, options: Options, taxonomy: Taxonomy) -> frozenset[str] | None:
        """The union of the stages' categories; None when a stage's cannot be known."""
        return _union(
            scored_categories(options.first, taxonomy), scored_categories(options.second, taxonomy)
        )

    @property
    def second(self) -> Classifier:
        """The second stage, built on first use (a guard LLM loads only when needed)."""
        if self._second is None:
            with self._build_lock:
                if self._second is None:
                    self._second = create_classifier(self.options.second, taxonomy=self._taxonomy)
        return self._second

    def escalation_reason(self, sample: Sample, scores: ScoreSet) -> str | None:
        """Why a sample goes to the second stage, or None when the first stage decides."""
        if self._languages is not None:
            lang = normalize_language(sample.language) if sample.language else UNDETERMINED
            if lang not in self._languages:
                return f"language {lang!r} not covered by the first stage"
        if self.options.escalate_outside_coverage and scores.coverage == "outside":
            return f"language {scores.language or 'und'!r} outside the first stage's coverage"
        low, high = self.options.escalate_from, self.options.escalate_below
        if low <= scores.unsafe < high:
            return f"first-stage score {scores.unsafe:.3f} in [{low}, {high})"
        return None

    def score(self, samples: Sequence[Sample]) -> list[ScoreSet]:
        """Score with the first stage; re-score the uncertain samples with the second."""
        started = time.perf_counter()
        firsts = self.first.score(samples)
        out: list[ScoreSet] = []
        escalate: list[int] = []
        reasons: dict[int, str] = {}
        for i, (sample, scores) in enumerate(zip(samples, firsts, strict=True)):
            reason = self.escalation_reason(sample, scores)
            if reason is None:
                out.append(_staged(scores, f"first:{self.first.name}", ()))
            else:
                out.append(scores)
                escalate.append(i)
                reasons[i] = reason
        if escalate:
            seconds = self._second_scores([samples[i] for i in escalate], started)
            if seconds is None:
                budget = self.options.max_latency_ms
                for i in escalate:
                    note = (
                        f"escalated ({reasons[i]}) but the second stage did not answer within "
                        f"max_latency_ms={budget:g}; first stage's scores used",
                    )
                    out[i] = _staged(firsts[i], f"fallback:first:{self.first.name}", note)
                return out
            for i, scores in zip(escalate, seconds, strict=True):
                note = (f"escalated: {reasons[i]}",)
                out[i] = _staged(scores, f"second:{self.second.name}", note)
        return out

    def _second_scores(self, samples: list[Sample], started: float) -> list[ScoreSet] | None:
        """The second stage's scores, or None when they did not come within the budget."""
        budget = self.options.max_latency_ms
        if budget is None:
            return self.second.score(samples)
        left = budget / 1000 - (time.perf_counter() - started)
        if left <= 0:
            return None
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=2, thread_name_prefix="guardrail-cascade"
            )
        # Building the second stage (loading its model) counts against the budget too: the
        # first calls fall back while it loads.
        future = self._pool.submit(lambda: self.second.score(samples))
        try:
            return future.result(timeout=left)
        except concurrent.futures.TimeoutError:
            future.cancel()
            return None


def _union(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    return None if a is None or b is None else a | b


def _staged(scores: ScoreSet, stage: str, notes: tuple[str, ...]) -> ScoreSet:
    language = scores.language
    return scores.model_copy(
        update={"stage": stage, "notes": notes + scores.notes, "language": language}
    )
