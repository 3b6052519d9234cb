"""``rules``: regular expressions and term lists per category and language. No dependencies.

Useful on its own (deterministic block-lists) and in tests. A rule that matches gives its
category its ``score``; ``unsafe`` is the highest category score.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from guardrail._resources import format_validation_error, read_yaml
from guardrail.errors import ConfigError
from guardrail.language import normalize_language
from guardrail.policy import check_patterns, compile_patterns
from guardrail.registry import register_classifier
from guardrail.taxonomy import Taxonomy
from guardrail.types import Role, Sample, ScoreSet

__all__ = ["Rule", "RulesClassifier"]


class Rule(BaseModel):
    """One rule: patterns and terms that signal a category."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    category: str = Field(description="Taxonomy category id this rule scores.")
    patterns: list[str] = Field(default_factory=list, description="Regular expressions.")
    terms: list[str] = Field(default_factory=list, description="Literal terms (whole words).")
    languages: list[str] | None = Field(
        None, description="Apply only to these languages (None: all)."
    )
    roles: list[Role] = Field(
        default_factory=lambda: [Role.PROMPT, Role.RESPONSE], description="Directions."
    )
    score: float = Field(1.0, ge=0, le=1, description="Score given to the category on a match.")
    case_sensitive: bool = Field(False, description="Match case exactly.")

    _compiles = field_validator("patterns")(check_patterns)

    @field_validator("languages")
    @classmethod
    def _normalise(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [normalize_language(v) for v in value]


class _RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[Rule]


@register_classifier("rules")
class RulesClassifier:
    """Scores categories by pattern and term matches."""

    name = "rules"

    class Options(BaseModel):
        """Options of the ``rules`` classifier."""

        model_config = ConfigDict(frozen=True, extra="forbid")

        rules: list[Rule] = Field(default_factory=list, description="Rules given inline.")
        files: list[str] = Field(
            default_factory=list, description="YAML files with a top-level `rules:` list."
        )
        base_score: float = Field(0.0, ge=0, le=1, description="unsafe score when nothing matches.")

    def __init__(self, options: Options | None = None, *, taxonomy: Taxonomy) -> None:
        options = options or self.Options()
        rules = list(options.rules)
        for file in options.files:
            rules.extend(_read_rules(Path(file)))
        for rule in rules:
            taxonomy.get(rule.category)
        self._base = options.base_score
        self._compiled = [(rule, _compile(rule)) for rule in rules]

    def score(self, samples: Sequence[Sample]) -> list[ScoreSet]:
        """Score each sample by its rule matches."""
        out = []
        for sample in samples:
            lang = normalize_language(sample.language) if sample.language else None
            categories: dict[str, float] = {}
            for rule, regex in self._compiled:
                if sample.role not in rule.roles:
                    continue
                if rule.languages is not None and lang not in rule.languages:
                    continue
                if regex.search(sample.text):
                    categories[rule.category] = max(categories.get(rule.category, 0.0), rule.score)
            unsafe = max([self._base, *categories.values()])
            out.append(
                ScoreSet(
                    unsafe=unsafe,
                    categories=categories,
                    classifier=self.name,
                    language=lang,
                    version="1",
                )
            )
        return out


def _compile(rule: Rule) -> re.Pattern[str]:
    compiled = compile_patterns(rule.patterns, rule.terms, case_sensitive=rule.case_sensitive)
    # An empty rule matches nothing rather than everything.
    return compiled or re.compile(r"(?!)")


def _read_rules(path: Path) -> list[Rule]:
    try:
        return _RuleFile.model_validate(read_yaml(path)).rules
    except ValidationError as e:
        raise ConfigError(f"{path}: invalid rules file:\n{format_validation_error(e)}") from e
