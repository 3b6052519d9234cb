"""``hf-generative``: guard LLMs that answer in text, run locally with transformers.

Families: PolyGuard, Llama Guard 3 and 4, Qwen3Guard-Gen, WildGuard, ShieldGemma. Each has its
prompt template and answer parser (``guardrail.classifiers.hub._families*``). Scores are the model's
probabilities at the answer tokens (e.g. P(unsafe) against P(safe)), the parsed categories become
per-category scores mapped into the policy's taxonomy, and responses get a refusal score where
the family gives one. An answer that is not in the family's format raises ``ClassifierError``
with the raw text attached; it is never read as safe.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from guardrail.classifiers.hub._generate import candidate_tokens, generate, render
from guardrail.classifiers.hub._loading import HFLoadOptions, load
from guardrail.classifiers.hub._select import (
    FamilyOptions,
    Generation,
    build_family,
    category_translator,
    score_jobs,
)
from guardrail.registry import register_classifier
from guardrail.taxonomy import Taxonomy
from guardrail.types import Role, Sample, ScoreSet

__all__ = ["HFGenerativeClassifier"]

# Tokens kept free for the template around a long text.
_TEMPLATE_RESERVE = 640


@register_classifier("hf-generative")
class HFGenerativeClassifier:
    """A guard LLM loaded with transformers.

    Args:
        options: model location, loading options and family.
        taxonomy: the policy's taxonomy (scores are reported in it; Llama Guard renders it).

    Raises:
        ConfigError: missing dependency, model not found, or options that do not fit.
    """

    name = "hf-generative"

    class Options(HFLoadOptions, FamilyOptions):
        """Options of the ``hf-generative`` classifier."""

        max_length: int = Field(
            4096, gt=_TEMPLATE_RESERVE, description="Longest prompt, template included."
        )

    def __init__(self, options: Options, *, taxonomy: Taxonomy) -> None:
        self.options = options
        self.family = build_family(options, taxonomy)
        self._translate = category_translator(self.family, taxonomy)
        self._loaded = load("causal", options)
        decisions = [self.family.decisions(role) for role in Role]
        self._candidates = candidate_tokens(
            self._loaded.tokenizer, [d for ds in decisions for d in ds.values()]
        )
        self.version = options.model + (f"@{options.revision}" if options.revision else "")

    def score(self, samples: Sequence[Sample]) -> list[ScoreSet]:
        """Score a batch: every call of every sample, generated in batches."""
        prepared = [self._fit(s) for s in samples]
        jobs = [
            (i, call)
            for i, (sample, _) in enumerate(prepared)
            for call in self.family.calls(sample)
        ]
        tok = self._loaded.tokenizer
        gens: list[Generation] = []
        size = self.options.batch_size
        for start in range(0, len(jobs), size):
            chunk = jobs[start : start + size]
            prompts = [(render(tok, call), call.add_special_tokens) for _, call in chunk]
            longest = max(call.max_new_tokens for _, call in chunk)
            gens += generate(
                self._loaded, prompts, max_new_tokens=longest, candidates=self._candidates
            )
        return score_jobs(
            self.family,
            samples,
            jobs,
            gens,
            self._translate,
            classifier=self.name,
            version=self.version,
            notes=[note for _, note in prepared],
            fallback_note="score from the parsed answer",
        )

    def _fit(self, sample: Sample) -> tuple[Sample, tuple[str, ...]]:
        """Shorten a text whose prompt would not fit ``max_length`` (the head is kept)."""
        tok = self._loaded.tokenizer
        budget = self.options.max_length - _TEMPLATE_RESERVE
        ids = tok.encode(sample.text, add_special_tokens=False)
        if len(ids) <= budget:
            return sample, ()
        text = tok.decode(ids[:budget], skip_special_tokens=True)
        shortened = Sample(text, sample.role, sample.context, sample.language)
        return shortened, (f"text truncated to {budget} tokens for {self.family.name}",)
