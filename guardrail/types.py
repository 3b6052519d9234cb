"""Core value types: actions, roles, samples, scores and verdicts.

Everything here is immutable and JSON-serialisable; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "COVERAGE_RANK",
    "Action",
    "Coverage",
    "Entity",
    "FiredCategory",
    "Role",
    "Sample",
    "ScoreSet",
    "Verdict",
    "combined_coverage",
]

#: Whether a text's language is one the classifier was built for: ``covered`` (it is),
#: ``outside`` (a known language it was not built for: scores are less reliable) or ``unknown``
#: (the language could not be told, e.g. a short greeting). None: the classifier does not say.
Coverage = Literal["covered", "outside", "unknown"]
#: Which coverage wins when several scores are combined: outside, then covered, then unknown.
COVERAGE_RANK: dict[str, int] = {"unknown": 0, "covered": 1, "outside": 2}


def combined_coverage(values: Iterable[Coverage | None]) -> Coverage | None:
    """The coverage of several scores of one text: ``outside`` if any says outside, else
    ``covered`` if any says covered, else ``unknown`` if any says unknown, else None."""
    said: list[Coverage] = [v for v in values if v is not None]
    return max(said, key=COVERAGE_RANK.__getitem__, default=None)


class Action(StrEnum):
    """What the policy says to do with a text. Ordered by severity."""

    ALLOW = "allow"
    FLAG = "flag"
    REDACT = "redact"
    BLOCK = "block"

    @property
    def severity(self) -> int:
        """0 for allow, 1 for flag, 2 for redact, 3 for block."""
        return _SEVERITY[self]

    @classmethod
    def most_severe(cls, *actions: Action) -> Action:
        """The most severe of ``actions`` (``ALLOW`` when there are none)."""
        return max(actions, key=_SEVERITY.__getitem__, default=cls.ALLOW)


_SEVERITY = {Action.ALLOW: 0, Action.FLAG: 1, Action.REDACT: 2, Action.BLOCK: 3}


class Role(StrEnum):
    """Which side of a conversation a text is on."""

    PROMPT = "prompt"
    RESPONSE = "response"


@dataclass(frozen=True, slots=True)
class Sample:
    """One text to score.

    Attributes:
        text: the text itself.
        role: ``prompt`` (user side) or ``response`` (model side).
        context: for a response, the prompt it answers.
        language: a known ISO 639-1 language code, or None to detect it.
    """

    text: str
    role: Role = Role.PROMPT
    context: str | None = None
    language: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise TypeError(f"text must be a str, not {type(self.text).__name__}")
        if self.context is not None and not isinstance(self.context, str):
            raise TypeError(f"context must be a str or None, not {type(self.context).__name__}")
        if self.language is not None and not isinstance(self.language, str):
            raise TypeError(f"language must be a str or None, not {type(self.language).__name__}")
        object.__setattr__(self, "role", Role(self.role))


class ScoreSet(BaseModel):
    """What a classifier says about one sample. Every score is a probability in [0, 1]."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    unsafe: float = Field(ge=0, le=1, description="Probability that the text is unsafe.")
    categories: dict[str, float] = Field(
        default_factory=dict, description="Probability per taxonomy category id."
    )
    refusal: float | None = Field(
        None, ge=0, le=1, description="Probability that a response is a refusal."
    )
    language: str | None = Field(None, description="Detected or given language code.")
    language_confidence: float | None = Field(
        None, ge=0, le=1, description="Confidence of the language detection."
    )
    coverage: Coverage | None = Field(
        None,
        description="Whether the language is one the classifier covers: covered, outside (a "
        "known language it does not cover), unknown (the language could not be told); None "
        "when the classifier does not say.",
    )
    classifier: str = Field("", description="Name of the classifier that produced the scores.")
    version: str | None = Field(None, description="Version of the classifier or its weights.")
    stage: str | None = Field(None, description="Cascade stage that produced the scores.")
    view: str | None = Field(
        None, description="Text view or part that produced the highest unsafe score."
    )
    notes: tuple[str, ...] = Field((), description="Free-form remarks from the classifier.")


class FiredCategory(BaseModel):
    """A threshold that fired."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    category: str = Field(
        description="Category id, 'unsafe' for the overall score, 'topic:NAME' for a banned "
        "topic, 'off_topic' when a text is about none of the allowed topics."
    )
    score: float = Field(description="The score that crossed the threshold.")
    threshold: float = Field(description="The threshold it crossed.")
    action: Action = Field(description="What crossing it means: flag or block.")


class Entity(BaseModel):
    """A piece of personal data or a secret found in a text: its type and span, never its value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str = Field(description="Entity type, e.g. EMAIL, PHONE, PERSON, AWS_KEY.")
    start: int = Field(ge=0, description="Start offset in the text that was checked.")
    end: int = Field(ge=0, description="End offset (exclusive) in the text that was checked.")
    score: float = Field(ge=0, le=1, description="The detector's confidence.")
    detector: str = Field(description="Which detector found it: pii or secrets.")
    action: Action = Field(description="What the policy says for this type and direction.")
    placeholder: str | None = Field(
        None, description="The placeholder that replaced it (set by Guard.redact only)."
    )


class Verdict(BaseModel):
    """The decision about one text, and why. Frozen and JSON-serialisable."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Action = Field(description="allow, flag, redact or block.")
    role: Role = Field(description="prompt or response.")
    scores: ScoreSet = Field(description="The classifier's scores (after combining parts/views).")
    categories: tuple[FiredCategory, ...] = Field(
        (), description="Thresholds that fired, most severe first."
    )
    decided_by: tuple[str, ...] = Field(
        (),
        description="What decided: threshold, blocklist, allowlist, error, empty, "
        "max_chars, or a cascade stage / text view (e.g. 'view:base64').",
    )
    language: str | None = Field(None, description="Language code used for thresholds.")
    language_confidence: float | None = Field(None, description="Language detection confidence.")
    coverage: Coverage | None = Field(
        None,
        description="covered, outside or unknown: whether the text's language is one the "
        "classifier that scored it covers (the policy's outside_coverage says what outside "
        "does); None when the classifier does not say.",
    )
    classifier: str = Field("", description="Classifier name.")
    policy: str = Field("", description="Policy name.")
    policy_hash: str = Field("", description="Content hash of the policy.")
    notes: tuple[str, ...] = Field((), description="Remarks: errors, truncation, skipped parts.")
    timings: dict[str, float] = Field(
        default_factory=dict, description="Milliseconds per step (classify, total, ...)."
    )
    entities: tuple[Entity, ...] = Field(
        (), description="Personal data and secrets found: types and spans, never the values."
    )

    @property
    def blocked(self) -> bool:
        """True when the action is block."""
        return self.action is Action.BLOCK

    @property
    def flagged(self) -> bool:
        """True when the action is flag."""
        return self.action is Action.FLAG

    @property
    def redacted(self) -> bool:
        """True when the action is redact (the text goes on with placeholders)."""
        return self.action is Action.REDACT

    def with_updates(self, **changes: Any) -> Verdict:
        """A copy with some fields changed (the verdict itself is frozen)."""
        return self.model_copy(update=changes)
