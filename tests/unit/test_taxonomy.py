"""Taxonomies and total mappings."""

from __future__ import annotations

import pytest

from guardrail import ConfigError, Role, load_mapping, load_taxonomy
from guardrail.taxonomy import Category, Taxonomy, TaxonomyMapping, list_mappings


def test_mlcommons_has_s1_to_s14_and_jailbreak():
    tax = load_taxonomy("mlcommons")
    assert [c.code for c in tax.categories[:14]] == [f"S{i}" for i in range(1, 15)]
    assert tax.by_code("s10").id == "hate"
    assert tax.get("jailbreak").roles == (Role.PROMPT,)
    assert "jailbreak" not in [c.id for c in tax.for_role(Role.RESPONSE)]


def test_openai_has_13_categories():
    assert len(load_taxonomy("openai").categories) == 13


@pytest.mark.parametrize(("source", "target"), list_mappings())
def test_builtin_mappings_are_total(source, target):
    mapping = load_mapping(source, target)  # check() runs inside
    src = load_taxonomy(source)
    assert set(mapping.map) | set(mapping.unmapped) == set(src.ids)


def test_openai_mapping_forward_and_backward():
    mapping = load_mapping("mlcommons", "openai")
    out = mapping.forward(
        {"violent_crimes": 0.7, "indiscriminate_weapons": 0.9, "hate": 0.2, "elections": 0.99}
    )
    assert out["violence"] == 0.9 and out["illicit_violent"] == 0.9 and out["hate"] == 0.2
    assert "elections" not in out and set(out) <= set(load_taxonomy("openai").ids)
    assert {"elections", "code_interpreter_abuse", "intellectual_property"} <= set(mapping.unmapped)
    back = mapping.backward({"sexual": 0.8})
    assert back["sexual_content"] == 0.8 and back["sex_related_crimes"] == 0.8


def test_llama_guard_codes_one_to_one():
    mapping = load_mapping("mlcommons", "llama_guard_3")
    assert mapping.forward({"hate": 0.5}) == {"s10": 0.5}


def _tiny(name: str, *ids: str) -> Taxonomy:
    return Taxonomy(
        name=name, categories=tuple(Category(id=i, code=i.upper(), name=i) for i in ids)
    )


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        (dict(map={"a": ["x"]}, target_unmapped=["y"]), "'b' is neither mapped"),
        (
            dict(map={"a": ["x"], "b": ["zz"]}, target_unmapped=["y"]),
            "unknown target category 'zz'",
        ),
        (dict(map={"a": ["x"], "b": ["x"]}), "'y' is neither reached"),
        (dict(map={"a": ["x", "y"], "q": ["x"]}, unmapped=["b"]), "unknown source category 'q'"),
        (dict(map={"a": ["x", "y"]}, unmapped=["a", "b"]), "both mapped and unmapped"),
    ],
)
def test_mapping_not_total_fails_loudly(mapping, message):
    m = TaxonomyMapping(source="s", target="t", **mapping)
    with pytest.raises(ConfigError, match=message):
        m.check(_tiny("s", "a", "b"), _tiny("t", "x", "y"))


def test_custom_category_must_be_mapped():
    base = load_taxonomy("mlcommons")
    custom = base.extended(add=[Category(id="competitor_talk", code="X1", name="c")])
    with pytest.raises(ConfigError, match="competitor_talk"):
        load_mapping("mlcommons", "openai", source_taxonomy=custom)
    mapping = load_mapping("mlcommons", "openai").extended(unmapped=["competitor_talk"])
    mapping.check(custom, load_taxonomy("openai"))


def test_category_ids_are_snake_case_and_unique():
    with pytest.raises(ValueError, match="snake_case"):
        Category(id="Bad-Id", code="B", name="b")
    with pytest.raises(ValueError, match="duplicate"):
        _tiny("t", "a", "a")
