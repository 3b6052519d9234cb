"""Choosing a family from options, and turning generated answers into ``ScoreSet`` s.

Shared by ``hf-generative`` (local transformers) and ``openai-guard`` (a served model): both
produce ``Generation`` s (the answer text, where each generated token ends, and the candidate
tokens' probabilities at a step) and hand them to ``score_sample``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from guardrail.classifiers.hub._families import (
    Call,
    CallResult,
    Family,
    decision_probability,
    label_value,
)
from guardrail.classifiers.hub._guards import PolyGuard, Qwen3Guard, WildGuard
from guardrail.classifiers.hub._llama import LlamaGuard
from guardrail.classifiers.hub._shieldgemma import ShieldGemma
from guardrail.classifiers.hub._taxonomy import Translate, translator
from guardrail.taxonomy import Taxonomy
from guardrail.types import Role, Sample, ScoreSet

FamilyName = Literal[
    "polyguard", "llama-guard-3", "llama-guard-4", "qwen3guard", "wildguard", "shieldgemma"
]


class FamilyOptions(BaseModel):
    """Which guard-LLM family, and its knobs (shared by hf-generative and openai-guard)."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    family: FamilyName = Field(description="Prompt template and answer parser to use.")
    exclude_categories: list[str] | None = Field(
        None,
        description="Llama Guard: policy categories left out of the prompt's category list "
        "(default: `jailbreak` and `prompt_injection`, where the taxonomy has them).",
    )
    controversial_weight: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Qwen3Guard: score given to 'Controversial' (0 safe, 1 unsafe).",
    )
    shieldgemma_harms: list[str] | None = Field(
        None, description="ShieldGemma: harm types to ask about (default: all four)."
    )
    max_new_tokens: int | None = Field(
        None, gt=0, description="Longest answer to generate (default: the family's own)."
    )


def build_family(options: FamilyOptions, taxonomy: Taxonomy) -> Family:
    """The family adapter the options name, set up for the policy's taxonomy.

    Raises:
        ConfigError: an option does not fit the family or the taxonomy.
    """
    extra = {"max_new_tokens": options.max_new_tokens} if options.max_new_tokens else {}
    if options.family == "polyguard":
        return PolyGuard(**extra)
    if options.family == "wildguard":
        return WildGuard(**extra)
    if options.family == "qwen3guard":
        return Qwen3Guard(controversial_weight=options.controversial_weight, **extra)
    if options.family == "shieldgemma":
        return ShieldGemma(harms=options.shieldgemma_harms)
    version = 3 if options.family == "llama-guard-3" else 4
    exclude = options.exclude_categories
    if exclude is None:
        # Jailbreaks and prompt injection are not Llama Guard categories (Prompt Guard's job);
        # leave them out by default.
        exclude = [c for c in ("jailbreak", "prompt_injection") if c in taxonomy.ids]
    return LlamaGuard(taxonomy, version=version, exclude=exclude, **extra)


def category_translator(family: Family, taxonomy: Taxonomy) -> Translate:
    """Native category scores -> the policy's categories (identity for Llama Guard)."""
    if family.taxonomy is None:
        return lambda scores: dict(scores)
    return translator(family.taxonomy, taxonomy)


@dataclass(frozen=True)
class Generation:
    """A generated answer.

    Attributes:
        text: the answer text.
        ends: for each generated token, the character offset where it ends in ``text``.
        alternatives: step index -> {candidate token text: probability}, or None when the
            backend returned no probabilities.
    """

    text: str
    ends: Sequence[int]
    alternatives: Callable[[int], dict[str, float]] | None

    def step_at(self, offset: int) -> int | None:
        """The generated token that covers character ``offset``."""
        for i, end in enumerate(self.ends):
            if end > offset:
                return i
        return None


def read_call(family: Family, call: Call, gen: Generation, role: Role) -> tuple[CallResult, bool]:
    """Parse one answer and read each decision's probability.

    Returns:
        The result, and whether any score fell back to the parsed label (no probabilities).

    Raises:
        ClassifierError: the answer is not in the family's format (raw text attached).
    """
    parsed = family.parse(call, gen.text, role)
    probs: dict[str, float] = {}
    fell_back = False
    for name, decision in family.decisions(role).items():
        prob = None
        step = gen.step_at(parsed.offsets[name])
        if step is not None and gen.alternatives is not None:
            prob = decision_probability(gen.alternatives(step), decision)
        if prob is None:
            prob = label_value(parsed.labels[name], decision)
            fell_back = True
        probs[name] = prob
    return CallResult(call, parsed, probs), fell_back


def score_sample(
    family: Family,
    sample: Sample,
    results: Sequence[CallResult],
    translate: Translate,
    *,
    classifier: str,
    version: str | None,
    notes: tuple[str, ...] = (),
) -> ScoreSet:
    """One ``ScoreSet`` from a sample's call results."""
    combined = family.combine(results)
    return ScoreSet(
        unsafe=min(max(combined.unsafe, 0.0), 1.0),
        categories=translate(combined.categories),
        refusal=combined.refusal if sample.role is Role.RESPONSE else None,
        language=sample.language,
        classifier=classifier,
        version=version,
        notes=notes,
    )


def score_jobs(
    family: Family,
    samples: Sequence[Sample],
    jobs: Sequence[tuple[int, Call]],
    gens: Sequence[Generation],
    translate: Translate,
    *,
    classifier: str,
    version: str | None,
    notes: Sequence[tuple[str, ...]] | None = None,
    fallback_note: str,
) -> list[ScoreSet]:
    """Read every call's answer and combine them into one ``ScoreSet`` per sample.

    Args:
        jobs: ``(sample index, call)`` pairs, in the order of ``gens``.
        gens: the generation answering each job.
        notes: per-sample notes to carry (e.g. truncation).
        fallback_note: added to a sample whose score fell back to the parsed answer.
    """
    results: list[list[CallResult]] = [[] for _ in samples]
    fallbacks = [False] * len(samples)
    for (i, call), gen in zip(jobs, gens, strict=True):
        result, fell_back = read_call(family, call, gen, samples[i].role)
        results[i].append(result)
        fallbacks[i] = fallbacks[i] or fell_back
    return [
        score_sample(
            family,
            sample,
            results[i],
            translate,
            classifier=classifier,
            version=version,
            notes=(notes[i] if notes else ()) + ((fallback_note,) if fallbacks[i] else ()),
        )
        for i, sample in enumerate(samples)
    ]
