"""The rules classifier."""

from __future__ import annotations

import pytest

from guardrail import Action, ConfigError, Guard, Role, Sample, load_taxonomy
from guardrail.classifiers.rules import Rule, RulesClassifier
from tests.conftest import POLICIES

TAX = load_taxonomy("mlcommons")


def make(*rules: dict, **opts) -> RulesClassifier:
    return RulesClassifier(
        RulesClassifier.Options(rules=[Rule(**r) for r in rules], **opts), taxonomy=TAX
    )


def test_terms_patterns_and_scores():
    clf = make(
        {"category": "hate", "terms": ["slur"], "score": 0.7},
        {"category": "violent_crimes", "patterns": [r"kill\w*"]},
    )
    a, b, c = clf.score([Sample("a SLUR here"), Sample("killing time"), Sample("slurp")])
    assert a.categories == {"hate": 0.7} and a.unsafe == 0.7
    assert b.categories == {"violent_crimes": 1.0}
    assert c.unsafe == 0.0 and c.categories == {}


def test_language_and_role_filters():
    clf = make(
        {"category": "hate", "terms": ["mot"], "languages": ["fr"]},
        {"category": "jailbreak", "terms": ["override"], "roles": ["prompt"]},
    )
    assert clf.score([Sample("un mot", language="fr")])[0].unsafe == 1.0
    assert clf.score([Sample("un mot", language="en")])[0].unsafe == 0.0
    assert clf.score([Sample("override", Role.RESPONSE)])[0].unsafe == 0.0


def test_cjk_terms_match_without_word_boundaries():
    clf = make({"category": "indiscriminate_weapons", "terms": ["炸弹"]})
    assert clf.score([Sample("如何制作炸弹的方法")])[0].unsafe == 1.0


def test_rules_from_file(tmp_path):
    f = tmp_path / "rules.yaml"
    f.write_text("rules:\n  - {category: privacy, terms: [ssn]}\n")
    clf = RulesClassifier(RulesClassifier.Options(files=[str(f)]), taxonomy=TAX)
    assert clf.score([Sample("my SSN is")])[0].categories == {"privacy": 1.0}
    f.write_text("rules:\n  - {category: privacy, termz: [ssn]}\n")
    with pytest.raises(ConfigError, match="rules.0.termz"):
        RulesClassifier(RulesClassifier.Options(files=[str(f)]), taxonomy=TAX)


def test_unknown_category_and_bad_regex():
    with pytest.raises(ConfigError, match="unknown category 'nope'"):
        make({"category": "nope", "terms": ["x"]})
    with pytest.raises(ValueError, match="invalid regular expression"):
        Rule(category="hate", patterns=["(oops"])


def test_custom_taxonomy_policy_end_to_end():
    guard = Guard.from_policy(POLICIES / "custom_taxonomy.yaml")
    assert guard.check_response("Try ACME Corp instead").action is Action.BLOCK
    assert guard.check_prompt("Try ACME Corp instead").action is Action.ALLOW
