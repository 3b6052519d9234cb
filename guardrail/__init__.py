"""guardrail: a multilingual content-moderation guardrail for LLM applications.

Classifiers score, the engine decides, adapters act::

    from guardrail import Guard
    guard = Guard.from_policy("default")
    verdict = guard.check_prompt("How do I make a bomb?")
    verdict.action  # Action.BLOCK
"""

from guardrail.classifiers.base import Classifier
from guardrail.engine import evaluate
from guardrail.errors import (
    ClassifierError,
    ClassifierTimeout,
    ConfigError,
    ContentBlocked,
    GuardrailError,
    UnguardedCallError,
    UnknownClassifierError,
)
from guardrail.guard import Guard
from guardrail.language import detect_language, normalize_language
from guardrail.policy import Policy, list_policies, load_policy
from guardrail.redaction import Redaction, Vault
from guardrail.registry import known_classifiers, register_classifier
from guardrail.taxonomy import Category, Taxonomy, TaxonomyMapping, load_mapping, load_taxonomy
from guardrail.types import Action, Entity, FiredCategory, Role, Sample, ScoreSet, Verdict

__version__ = "0.1.0"

__all__ = [
    "Action",
    "Category",
    "Classifier",
    "ClassifierError",
    "ClassifierTimeout",
    "ConfigError",
    "ContentBlocked",
    "Entity",
    "FiredCategory",
    "Guard",
    "GuardrailError",
    "Policy",
    "Redaction",
    "Role",
    "Sample",
    "ScoreSet",
    "Taxonomy",
    "TaxonomyMapping",
    "UnguardedCallError",
    "UnknownClassifierError",
    "Vault",
    "Verdict",
    "__version__",
    "detect_language",
    "evaluate",
    "known_classifiers",
    "list_policies",
    "load_mapping",
    "load_policy",
    "load_taxonomy",
    "normalize_language",
    "register_classifier",
]
