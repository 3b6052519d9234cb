"""``prompt_injection``: a category of the default taxonomy beside ``jailbreak``."""

from __future__ import annotations

from pathlib import Path

import yaml

from guardrail import load_policy
from guardrail.taxonomy import list_mappings, load_mapping, load_taxonomy
from guardrail.types import Role

POLICIES = Path(__file__).resolve().parents[2] / "policies"


def test_mlcommons_has_prompt_injection_for_prompts_beside_jailbreak():
    taxonomy = load_taxonomy("mlcommons")
    ids = list(taxonomy.ids)
    assert ids.index("prompt_injection") == ids.index("jailbreak") + 1
    category = taxonomy.get("prompt_injection")
    assert list(category.roles) == [Role.PROMPT]
    text = category.description.lower()
    for word in ("ignore all previous instructions", "system prompt", "tool output", "e-mail"):
        assert word in text


def test_every_mapping_still_accounts_for_every_category():
    for source, target in list_mappings():
        load_mapping(source, target)  # total by declaration, or ConfigError


def test_labels_that_mean_injection_map_to_it():
    qwen = load_mapping("qwen3guard", "mlcommons")
    assert "prompt_injection" in qwen.map["jailbreak"]
    assert "prompt_injection" in load_mapping("mlcommons", "openai").unmapped


def test_prompt_guard_presets_use_the_plain_taxonomy():
    for name in ("prompt-guard-2", "prompt-guard-2-22m"):
        raw = yaml.safe_load((POLICIES / f"{name}.yaml").read_text())
        assert raw["taxonomy"] == "mlcommons"  # no duplicate `add: [prompt_injection]`
        policy = load_policy(name)
        assert {"jailbreak", "prompt_injection"} <= set(policy.resolved_taxonomy.ids)


def test_shipped_embedded_policies_act_on_prompt_injection():
    # Head v2 scores prompt_injection: default and strict flag and block it, permissive flags.
    for name in ("default", "strict", "permissive"):
        policy = load_policy(name)
        limits = policy.thresholds.prompt.categories["prompt_injection"]
        assert limits.flag_at is not None
        assert "prompt_injection" not in policy.thresholds.response.categories
