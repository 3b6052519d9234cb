"""``cascade``: a fast classifier first, a stronger one only where the fast one is unsure.

A sample goes to the second stage when the first stage's ``unsafe`` score lies in
``[escalate_from, escalate_below)``, or when its language is not one the first stage covers.
Every ``ScoreSet`` records the stage that decided in ``stage`` (the engine reports it in the
verdict's ``decided_by``); escalated ones also say why in ``notes``.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator

from guardrail.classifiers.base import Classifier
from guardrail.language import UNDETERMINED, normalize_language
from guardrail.policy import ClassifierSpec
from guardrail.registry import create_classifier, register_classifier
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

    @property
    def second(self) -> Classifier:
        """The second stage, built on first use (a guard LLM loads only when needed)."""
        if self._second is None:
            self._second = create_classifier(self.options.second, taxonomy=self._taxonomy)
        return self._second

    def escalation_reason(self, sample: Sample, scores: ScoreSet) -> str | None:
        """Why a sample goes to the second stage, or None when the first stage decides."""
        if self._languages is not None:
            lang = normalize_language(sample.language) if sample.language else UNDETERMINED
            if lang not in self._languages:
                return f"language {lang!r} not covered by the first stage"
        low, high = self.options.escalate_from, self.options.escalate_below
        if low <= scores.unsafe < high:
            return f"first-stage score {scores.unsafe:.3f} in [{low}, {high})"
        return None

    def score(self, samples: Sequence[Sample]) -> list[ScoreSet]:
        """Score with the first stage; re-score the uncertain samples with the second."""
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
            seconds = self.second.score([samples[i] for i in escalate])
            for i, scores in zip(escalate, seconds, strict=True):
                note = (f"escalated: {reasons[i]}",)
                out[i] = _staged(scores, f"second:{self.second.name}", note)
        return out


def _staged(scores: ScoreSet, stage: str, notes: tuple[str, ...]) -> ScoreSet:
    language = scores.language
    return scores.model_copy(
        update={"stage": stage, "notes": notes + scores.notes, "language": language}
    )
