"""Policies: which classifier, which thresholds, which lists, loaded from validated YAML.

Every model forbids unknown keys, so a typo in a policy fails at load time with the file, the
field path and the message, instead of silently taking a default.
"""

from __future__ import annotations

import hashlib
import json
import re
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from guardrail._entity_types import ENTITY_GROUPS, NER_TYPES, PII_TYPES, SECRET_TYPES, detector_of
from guardrail._resources import (
    format_validation_error,
    read_yaml,
    resource_names,
    resource_path,
)
from guardrail.errors import ConfigError, UnknownClassifierError
from guardrail.language import normalize_language
from guardrail.taxonomy import Category, Taxonomy, load_taxonomy
from guardrail.types import Action, Role
from guardrail.views.normalize import Normalization

__all__ = [
    "ClassifierSpec",
    "DirectionThresholds",
    "EntityRules",
    "LanguageOverride",
    "OnError",
    "PatternList",
    "PiiSettings",
    "Policy",
    "RoleThresholds",
    "SecretsSettings",
    "TaxonomySpec",
    "Thresholds",
    "Topic",
    "list_policies",
    "load_policy",
]

_STRICT = ConfigDict(frozen=True, extra="forbid")


class OnError(StrEnum):
    """What to do when the classifier fails or times out."""

    BLOCK = "block"
    ALLOW = "allow"


class Thresholds(BaseModel):
    """Cut-offs for one score."""

    model_config = _STRICT

    flag_at: float | None = Field(None, ge=0, le=1, description="Flag when score >= flag_at.")
    block_at: float | None = Field(None, ge=0, le=1, description="Block when score >= block_at.")

    def merged(self, other: Thresholds | None) -> Thresholds:
        """These thresholds with the fields ``other`` sets explicitly on top."""
        if other is None:
            return self
        return Thresholds.model_validate(
            {**self.model_dump(), **other.model_dump(include=other.model_fields_set)}
        )

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.flag_at is not None and self.block_at is not None and self.flag_at > self.block_at:
            raise ValueError(f"flag_at ({self.flag_at}) must not exceed block_at ({self.block_at})")
        return self


class DirectionThresholds(BaseModel):
    """Thresholds for one direction (prompts or responses)."""

    model_config = _STRICT

    unsafe: Thresholds | None = Field(None, description="Thresholds for the overall unsafe score.")
    categories: dict[str, Thresholds] = Field(
        default_factory=dict, description="Thresholds per category id."
    )
    default_category: Thresholds | None = Field(
        None, description="Thresholds for categories not listed under `categories`."
    )
    refusal: Thresholds | None = Field(
        None,
        description=(
            "Responses only: act on the refusal score (the answer declines the request), e.g. "
            "flag refusals to watch over-refusal. Fires as category `refusal`."
        ),
    )

    def merged(self, other: DirectionThresholds | None) -> DirectionThresholds:
        """These thresholds with ``other``'s given values on top."""
        if other is None:
            return self
        categories = dict(self.categories)
        for cat, limits in other.categories.items():
            categories[cat] = categories[cat].merged(limits) if cat in categories else limits
        return DirectionThresholds(
            unsafe=self.unsafe.merged(other.unsafe) if self.unsafe else other.unsafe,
            categories=categories,
            default_category=self.default_category.merged(other.default_category)
            if self.default_category
            else other.default_category,
            refusal=self.refusal.merged(other.refusal) if self.refusal else other.refusal,
        )

    def for_category(self, category_id: str) -> Thresholds | None:
        """The thresholds that apply to one category."""
        return self.categories.get(category_id, self.default_category)


class RoleThresholds(BaseModel):
    """Thresholds for prompts and for responses."""

    model_config = _STRICT

    prompt: DirectionThresholds = Field(
        default_factory=DirectionThresholds, description="Thresholds for user input."
    )
    response: DirectionThresholds = Field(
        default_factory=DirectionThresholds, description="Thresholds for model output."
    )


class LanguageOverride(BaseModel):
    """Thresholds that replace the base ones for some languages or language groups.

    Only the values an override sets change: ``unsafe: {flag_at: 0.2}`` keeps the inherited
    ``block_at``.
    """

    model_config = _STRICT

    languages: list[str] = Field(
        min_length=1, description="Language codes (ISO 639-1) or names of `language_groups`."
    )
    prompt: DirectionThresholds | None = Field(None, description="Overrides for prompts.")
    response: DirectionThresholds | None = Field(None, description="Overrides for responses.")
    reason: str = Field("", description="Why the override exists (documentation only).")


def check_patterns(value: list[str]) -> list[str]:
    """Validator: every pattern must be a valid regular expression."""
    for pattern in value:
        try:
            re.compile(pattern)
        except re.error as e:
            raise ValueError(f"invalid regular expression {pattern!r}: {e}") from e
    return value


def compile_patterns(
    patterns: list[str], terms: list[str], *, case_sensitive: bool
) -> re.Pattern[str] | None:
    """One alternation of regular expressions and whole-word terms; None when both are empty."""
    parts = [f"(?:{p})" for p in patterns] + [term_regex(t) for t in terms]
    if not parts:
        return None
    return re.compile("|".join(parts), 0 if case_sensitive else re.IGNORECASE)


class PatternList(BaseModel):
    """Regular expressions and literal terms matched against the text."""

    model_config = _STRICT

    patterns: list[str] = Field(default_factory=list, description="Regular expressions (re).")
    terms: list[str] = Field(
        default_factory=list, description="Literal terms, matched as whole words."
    )
    case_sensitive: bool = Field(False, description="Match case exactly.")
    roles: list[Role] = Field(
        default_factory=lambda: [Role.PROMPT, Role.RESPONSE],
        description="Directions it applies to.",
    )

    _compiles = field_validator("patterns")(check_patterns)

    @cached_property
    def compiled(self) -> re.Pattern[str] | None:
        """One compiled alternation of every pattern and term, or None when empty."""
        return compile_patterns(self.patterns, self.terms, case_sensitive=self.case_sensitive)

    def search(self, text: str, role: Role) -> str | None:
        """The first matching substring, or None."""
        if role not in self.roles or self.compiled is None:
            return None
        match = self.compiled.search(text)
        return match.group(0) if match else None


def term_regex(term: str) -> str:
    """A regex for a literal term: whole-word where the script uses word boundaries."""
    escaped = re.escape(term)
    if not term:
        return escaped
    # Scripts written without spaces (CJK, Thai, ...) have no word boundaries to require.
    head = r"(?<!\w)" if term[0].isascii() or _spaced(term[0]) else ""
    tail = r"(?!\w)" if term[-1].isascii() or _spaced(term[-1]) else ""
    return head + escaped + tail


def _spaced(char: str) -> bool:
    code = ord(char)
    unspaced = (
        (0x0E00 <= code <= 0x0EFF)
        or (0x2E80 <= code <= 0x9FFF)
        or (0xAC00 <= code <= 0xD7AF)
        or (0xF900 <= code <= 0xFAFF)
        or (0x3040 <= code <= 0x30FF)
    )
    return not unspaced


#: Regions whose national phone formats are recognised (``phonenumbers`` region codes).
DEFAULT_PHONE_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "PT", "BR", "NL", "JP", "IN", "CA")


class PiiSettings(BaseModel):
    """Personal data found by Microsoft Presidio (the ``pii`` extra: ``pip install ".[pii]"``)."""

    model_config = _STRICT

    types: list[str] | None = Field(
        None,
        description="PII types to look for; None: every pattern type (and the NER types "
        "PERSON, LOCATION, NRP, DATE_TIME when spacy_model is set).",
    )
    min_score: float = Field(
        0.4,
        ge=0,
        le=1,
        description="Ignore findings the recognizer scores below this (phone numbers score 0.4 "
        "without context words, which a blank pipeline cannot see).",
    )
    phone_regions: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PHONE_REGIONS),
        description="Regions whose national phone formats count (international +NN numbers "
        "are found whatever the region).",
    )
    spacy_model: str | None = Field(
        None,
        description="An installed spaCy pipeline (e.g. en_core_web_lg) for names, places and "
        "dates; None uses a blank pipeline (patterns only, nothing downloaded).",
    )
    language: str = Field("en", description="Language code of spacy_model's pipeline.")

    @field_validator("types")
    @classmethod
    def _known(cls, value: list[str] | None) -> list[str] | None:
        for name in value or []:
            if name not in PII_TYPES + NER_TYPES:
                raise ValueError(
                    f"unknown PII type {name!r}; known: {', '.join(PII_TYPES)}, "
                    f"{', '.join(NER_TYPES)} (the last ones need spacy_model)"
                )
        return value


class SecretsSettings(BaseModel):
    """Secrets found by Yelp's detect-secrets plugins."""

    model_config = _STRICT

    types: list[str] | None = Field(None, description="Secret types to look for; None: all.")
    base64_limit: float = Field(
        4.5, ge=0, le=8, description="Shannon entropy from which a quoted base64 string counts."
    )
    hex_limit: float = Field(
        3.0, ge=0, le=8, description="Shannon entropy from which a quoted hex string counts."
    )

    @field_validator("types")
    @classmethod
    def _known(cls, value: list[str] | None) -> list[str] | None:
        for name in value or []:
            if name not in SECRET_TYPES:
                raise ValueError(f"unknown secret type {name!r}; known: {', '.join(SECRET_TYPES)}")
        return value


class EntityRules(BaseModel):
    """Personal data and secrets: which detectors run, and per type and direction what to do.

    ``prompt`` and ``response`` map an entity type (``EMAIL``, ``AWS_KEY``, ...) or a group
    (``pii``, ``secrets``) to ``allow``, ``flag``, ``redact`` or ``block``; a type beats its
    group, and types not named are allowed (still listed in the verdict).
    """

    model_config = _STRICT

    pii: PiiSettings | None = Field(None, description="Run Presidio's PII recognizers.")
    secrets: SecretsSettings | None = Field(None, description="Run detect-secrets' plugins.")
    prompt: dict[str, Action] = Field(
        default_factory=dict, description="Action per entity type or group in user input."
    )
    response: dict[str, Action] = Field(
        default_factory=dict, description="Action per entity type or group in model output."
    )

    @model_validator(mode="after")
    def _check_rules(self) -> EntityRules:
        for direction, rules in (("prompt", self.prompt), ("response", self.response)):
            for name in rules:
                detector = detector_of(name)
                if detector is None:
                    known = ", ".join([*ENTITY_GROUPS, *PII_TYPES, *NER_TYPES, *SECRET_TYPES])
                    raise ValueError(f"{direction}: unknown entity type {name!r}; known: {known}")
                if getattr(self, detector) is None:
                    raise ValueError(
                        f"{direction}.{name}: the {detector} detector is off; add "
                        f"`{detector}: {{}}` under entities to turn it on"
                    )
        return self

    @property
    def active(self) -> bool:
        """True when a detector runs."""
        return self.pii is not None or self.secrets is not None

    def action_for(self, entity_type: str, role: Role) -> Action:
        """What to do with one entity type in one direction (a type beats its group)."""
        rules = self.prompt if role is Role.PROMPT else self.response
        if entity_type in rules:
            return rules[entity_type]
        group = detector_of(entity_type)
        if group is not None and group in rules:
            return rules[group]
        return Action.ALLOW


class Topic(BaseModel):
    """A topic for topic rails: a short description and example phrases, in any language."""

    model_config = _STRICT

    name: str = Field(min_length=1, description="Reported as `topic:NAME` in verdicts.")
    description: str = Field(min_length=1, description="What the topic is, in a sentence.")
    examples: list[str] = Field(
        min_length=1, description="Phrases about the topic (any language; 3-10 work well)."
    )
    threshold: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Calibrated score from which a text counts as about the topic (0.5: its "
        "similarity lies 2.5 robust deviations above everyday text's, 0.82: 4; the same scale "
        "for every topic).",
    )
    action: Literal["flag", "block"] = Field(
        "block", description="For a banned topic: what a text about it gets."
    )

    @field_validator("examples")
    @classmethod
    def _non_empty(cls, value: list[str]) -> list[str]:
        if any(not e.strip() for e in value):
            raise ValueError("examples must not be empty strings")
        return value


class ClassifierSpec(BaseModel):
    """Which classifier scores the text, and with which options."""

    model_config = _STRICT

    name: str = Field("embedded", description="Registered classifier name.")
    options: dict[str, Any] = Field(
        default_factory=dict, description="Options, validated against the backend's Options."
    )


class TaxonomySpec(BaseModel):
    """A built-in taxonomy with categories added or removed."""

    model_config = _STRICT

    extends: str = Field("mlcommons", description="Built-in taxonomy name or YAML path.")
    add: list[Category] = Field(default_factory=list, description="Categories to add.")
    remove: list[str] = Field(default_factory=list, description="Category ids to remove.")


class Policy(BaseModel):
    """A complete guardrail policy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="Policy name, reported in every verdict.")
    description: str = Field("", description="What the policy is for.")
    taxonomy: str | TaxonomySpec = Field(
        "mlcommons",
        description="Taxonomy name/path, or one extended with `extends`/`add`/`remove`.",
    )
    classifier: ClassifierSpec = Field(
        default_factory=ClassifierSpec, description="The classifier and its options."
    )
    thresholds: RoleThresholds = Field(
        default_factory=RoleThresholds, description="Base thresholds per direction."
    )
    language_groups: dict[str, list[str]] = Field(
        default_factory=dict, description="Named groups of language codes, usable in overrides."
    )
    language_overrides: list[LanguageOverride] = Field(
        default_factory=list,
        description="Per-language or per-group thresholds; an exact language beats a group, "
        "and later entries beat earlier ones.",
    )
    blocklist: PatternList = Field(
        default_factory=PatternList, description="Matches always block (checked first)."
    )
    allowlist: PatternList = Field(
        default_factory=PatternList,
        description="Matches allow, unless the blocklist matched (the remedy for false positives).",
    )
    on_error: OnError = Field(
        OnError.BLOCK, description="Classifier failure or timeout: block (fail closed) or allow."
    )
    outside_coverage: Literal["score", "flag", "block"] = Field(
        "score",
        description="A text in a language outside the classifier's coverage (verdict "
        "`coverage: outside`): score it as any other (score), or give it at least flag or "
        "block, with a note naming the language. Texts whose language could not be told "
        "(`coverage: unknown`) are scored as usual.",
    )
    timeout_s: float | None = Field(
        None, gt=0, description="Timeout for async checks; None waits indefinitely."
    )
    max_chars: int = Field(20_000, gt=0, description="Longest text scored as one piece.")
    on_long_input: Literal["parts", "truncate", "block"] = Field(
        "parts",
        description="Past max_chars: score by parts (max taken), score only the first "
        "max_chars, or block.",
    )
    max_parts: int = Field(
        64, gt=0, description="With on_long_input=parts, texts needing more parts are blocked."
    )
    normalization: Normalization = Field(
        default_factory=Normalization,
        description="Text views scored besides the original (against obfuscation) and "
        "scoring of mixed-language text by parts; all on by default.",
    )
    refusal_message: str = Field(
        "Sorry, I can't help with that.", description="Text a blocked call returns instead."
    )
    banned_topics: list[Topic] = Field(
        default_factory=list,
        description="Topics a text must not be about: flagged or blocked (each topic's action).",
    )
    allowed_topics: list[Topic] = Field(
        default_factory=list,
        description="Stay on topic: a text about none of these gets `off_topic_action`.",
    )
    off_topic_action: Literal["flag", "block"] = Field(
        "flag", description="What a text about none of the allowed topics gets."
    )
    topic_roles: list[Role] = Field(
        default_factory=lambda: [Role.PROMPT],
        description="Directions the topic rails apply to (prompts by default).",
    )
    entities: EntityRules = Field(
        default_factory=EntityRules,
        description="Personal data and secrets: detectors and what to do per type "
        "(allow / flag / redact / block) and direction.",
    )

    @field_validator("language_groups")
    @classmethod
    def _normalise_groups(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        return {name: [normalize_language(c) for c in codes] for name, codes in value.items()}

    @model_validator(mode="after")
    def _check_topics(self) -> Policy:
        names = [t.name for t in [*self.banned_topics, *self.allowed_topics]]
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"topic names must be unique; repeated: {', '.join(dupes)}")
        return self

    @model_validator(mode="after")
    def _check_names(self) -> Policy:
        ids = set(self.resolved_taxonomy.ids)
        for i, ov in enumerate(self.language_overrides):
            for lang in ov.languages:
                if lang not in self.language_groups and not _LANG_CODE.match(lang):
                    raise ValueError(
                        f"language_overrides.{i}.languages: {lang!r} is neither a language code "
                        f"nor a group in language_groups ({', '.join(self.language_groups)})"
                    )
        for where, dt in self._threshold_places():
            if where.endswith(".prompt") and dt and dt.refusal is not None:
                raise ValueError(f"{where}.refusal: refusal is scored for responses only")
            for cat in dt.categories if dt else {}:
                if cat not in ids:
                    known = ", ".join(sorted(ids))
                    raise ValueError(
                        f"{where}.categories: unknown category {cat!r}; known: {known}"
                    )
        return self

    def _threshold_places(self) -> list[tuple[str, DirectionThresholds | None]]:
        """Every set of direction thresholds, named by where it sits in the file."""
        places: list[tuple[str, DirectionThresholds | None]] = [
            ("thresholds.prompt", self.thresholds.prompt),
            ("thresholds.response", self.thresholds.response),
        ]
        for i, ov in enumerate(self.language_overrides):
            places += [
                (f"language_overrides.{i}.prompt", ov.prompt),
                (f"language_overrides.{i}.response", ov.response),
            ]
        return places

    @cached_property
    def resolved_taxonomy(self) -> Taxonomy:
        """The taxonomy object this policy uses."""
        if isinstance(self.taxonomy, str):
            return load_taxonomy(self.taxonomy)
        base = load_taxonomy(self.taxonomy.extends)
        return base.extended(add=self.taxonomy.add, remove=self.taxonomy.remove)

    @cached_property
    def content_hash(self) -> str:
        """A short hash of the policy's content (changes when any setting changes)."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def replace(self, **changes: Any) -> Policy:
        """A validated copy with some settings changed (the policy itself is frozen).

        Raises:
            ConfigError: the changed policy is invalid.
        """
        try:
            return Policy.model_validate({**self.model_dump(exclude_unset=True), **changes})
        except ValidationError as e:
            raise ConfigError(f"invalid policy:\n{format_validation_error(e)}") from e

    def check_scored(self, scored: frozenset[str] | None, classifier: str) -> None:
        """Refuse thresholds for categories the classifier does not score.

        Args:
            scored: the category ids the classifier scores (None: unknown, nothing checked).
            classifier: its name, for the message.

        Raises:
            ConfigError: a ``categories`` entry (base thresholds or a language override) names
                a category outside ``scored``; the message lists what the classifier scores.
                ``default_category`` is not checked: it applies to whatever is scored.
        """
        if scored is None:
            return
        for where, dt in self._threshold_places():
            for cat in dt.categories if dt else {}:
                if cat not in scored:
                    known = ", ".join(sorted(scored)) or "none"
                    raise ConfigError(
                        f"{where}.categories.{cat}: classifier {classifier!r} does not score "
                        f"{cat!r}, so this threshold would never fire; it scores: {known}"
                    )

    def thresholds_for(self, role: Role, language: str | None) -> DirectionThresholds:
        """Thresholds for one direction and language, overrides applied.

        Group overrides apply first, then overrides naming the exact language.
        """
        key = (role, language)
        cache: dict[tuple[Role, str | None], DirectionThresholds] = self._threshold_cache
        if key in cache:
            return cache[key]
        base = self.thresholds.prompt if role is Role.PROMPT else self.thresholds.response
        if language:
            lang = normalize_language(language)
            groups = {g for g, codes in self.language_groups.items() if lang in codes}
            for exact in (False, True):
                for ov in self.language_overrides:
                    hit = lang in ov.languages if exact else bool(groups & set(ov.languages))
                    if hit:
                        base = base.merged(ov.prompt if role is Role.PROMPT else ov.response)
        cache[key] = base
        return base

    @cached_property
    def _threshold_cache(self) -> dict[tuple[Role, str | None], DirectionThresholds]:
        return {}


_LANG_CODE = re.compile(r"^[a-z]{2,3}$")


def list_policies() -> list[str]:
    """Names of the built-in policies."""
    return resource_names("policies")


def load_policy(name_or_path: str | Path, *, validate_classifier: bool = True) -> Policy:
    """Load a built-in policy by name or a policy YAML file by path.

    Args:
        name_or_path: a built-in name (``default``, ``strict``, ...) or a path to a YAML file.
        validate_classifier: also check the classifier name and its options against the
            backend's ``Options`` model (imports the backend module, never its heavy deps).

    Returns:
        The validated policy.

    Raises:
        ConfigError: missing file, bad YAML, unknown field, bad value, unknown category or
            classifier, a threshold for a category the classifier does not score (where the
            backend can tell without loading a model); the message names the file and the
            field.
    """
    path = resource_path("policies", name_or_path)
    data = read_yaml(path)
    try:
        policy = Policy.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"{path}: invalid policy:\n{format_validation_error(e)}") from e
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from e
    if validate_classifier:
        # Upward on purpose, at call time: the registry sits above the policy (allowed by the
        # layers contract in pyproject.toml).
        from guardrail.registry import validate_options

        try:
            validate_options(policy.classifier)
        except UnknownClassifierError as e:
            raise UnknownClassifierError(e.name, e.known, where=f"{path}: classifier.name") from e
        except ConfigError as e:
            raise ConfigError(f"{path}: classifier.options: {e}") from e
        from guardrail.registry import scored_categories

        scored = scored_categories(policy.classifier, policy.resolved_taxonomy)
        try:
            policy.check_scored(scored, policy.classifier.name)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from e
    return policy
