"""Policy loading, validation errors, built-ins, schema."""

from __future__ import annotations

import pytest

from guardrail import ConfigError, Role, UnknownClassifierError, list_policies, load_policy
from guardrail.policy import Policy
from tests.conftest import POLICIES


@pytest.mark.parametrize("name", ["default", "strict", "permissive"])
def test_builtin_policies_load(name):
    policy = load_policy(name)
    assert policy.name == name
    # No hand-picked per-language overrides: `outside_coverage` says what to do where the
    # classifier does not cover the language.
    assert not policy.language_overrides
    assert policy.outside_coverage in {"score", "flag", "block"}
    assert policy.thresholds.prompt.unsafe and policy.thresholds.response.unsafe


def test_list_policies_has_builtins():
    assert {"default", "strict", "permissive"} <= set(list_policies())


@pytest.mark.parametrize(
    ("file", "needles"),
    [
        ("typo.yaml", ["typo.yaml", "thresholds.prompt.unsafe.blok_at", "Extra inputs"]),
        ("bad_category.yaml", ["bad_category.yaml", "violence_crimes", "violent_crimes"]),
        ("bad_threshold.yaml", ["thresholds.response.unsafe.block_at", "less than or equal to 1"]),
        ("bad_options.yaml", ["bad_options.yaml", "classifier.options", "rulez"]),
    ],
)
def test_config_errors_name_file_and_field(file, needles):
    with pytest.raises(ConfigError) as info:
        load_policy(POLICIES / file)
    for needle in needles:
        assert needle in str(info.value)


def test_unknown_classifier_lists_known_names():
    with pytest.raises(UnknownClassifierError) as info:
        load_policy(POLICIES / "unknown_classifier.yaml")
    message = str(info.value)
    assert "no-such-backend" in message and "rules" in message and "fake" in message
    assert "unknown_classifier.yaml" in message
    assert isinstance(info.value, ValueError)


def test_unknown_builtin_and_missing_file():
    with pytest.raises(ConfigError, match="known: .*default"):
        load_policy("no-such-policy")
    with pytest.raises(ConfigError, match="no such file"):
        load_policy("missing/policy.yaml")


def test_yaml_syntax_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_policy(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_policy(bad)


def test_flag_above_block_rejected(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text(
        "name: p\nclassifier: {name: fake}\nthresholds:\n  prompt:\n"
        "    unsafe: {flag_at: 0.9, block_at: 0.5}\n"
    )
    with pytest.raises(ConfigError, match="must not exceed"):
        load_policy(f)


def test_bad_regex_and_unknown_language_group(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("name: p\nclassifier: {name: fake}\nblocklist: {patterns: ['(unclosed']}\n")
    with pytest.raises(ConfigError, match="blocklist.patterns"):
        load_policy(f)
    f.write_text(
        "name: p\nclassifier: {name: fake}\nlanguage_overrides:\n  - languages: [not_a_group]\n"
    )
    with pytest.raises(ConfigError, match="not_a_group"):
        load_policy(f)


def test_language_codes_normalised_in_groups():
    policy = load_policy(POLICIES / "basic.yaml")
    assert policy.language_groups["cjk"] == ["zh", "ja", "ko"]
    assert policy.thresholds_for(Role.PROMPT, "zh-TW").unsafe.block_at == 0.7


def test_custom_taxonomy_add_remove():
    policy = load_policy(POLICIES / "custom_taxonomy.yaml")
    ids = policy.resolved_taxonomy.ids
    assert "competitor_talk" in ids and "elections" not in ids


def test_content_hash_changes_with_content():
    a = load_policy("default")
    b = a.replace(on_error="allow")
    assert a.content_hash != Policy.model_validate(b.model_dump()).content_hash
    assert a.content_hash == load_policy("default").content_hash


def test_json_schema_has_descriptions():
    schema = Policy.model_json_schema()
    assert schema["additionalProperties"] is False
    assert schema["properties"]["on_error"]["description"]
    assert "Thresholds" in schema["$defs"]
