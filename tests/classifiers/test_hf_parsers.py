"""Family parsers and decision scoring against answers in each family's documented format."""

from __future__ import annotations

import math
import typing

import pytest

from guardrail.classifiers.hub._families import (
    UNSAFE,
    YES_NO,
    Decision,
    decision_probability,
    token_class,
)
from guardrail.classifiers.hub._guards import (
    POLYGUARD_SYSTEM,
    WILDGUARD_TEMPLATE,
    PolyGuard,
    Qwen3Guard,
    WildGuard,
)
from guardrail.classifiers.hub._llama import LlamaGuard
from guardrail.classifiers.hub._select import (
    FamilyName,
    FamilyOptions,
    Generation,
    build_family,
    read_call,
)
from guardrail.classifiers.hub._shieldgemma import ShieldGemma
from guardrail.errors import ClassifierError, ConfigError
from guardrail.taxonomy import Category, load_taxonomy
from guardrail.types import Role, Sample

MLC = load_taxonomy("mlcommons")
P, R = Role.PROMPT, Role.RESPONSE


def _parse(family, text, role=P):
    call = family.calls(Sample("x", role, "q" if role is R else None))[0]
    return family.parse(call, text, role)


@pytest.mark.parametrize(
    ("text", "label", "categories"),
    [
        ("safe", "safe", ()),
        ("\n\nsafe", "safe", ()),
        ("unsafe\nS1", "unsafe", ("violent_crimes",)),
        ("\n\nunsafe\nS1,S10", "unsafe", ("violent_crimes", "hate")),
        ("unsafe\nS9, S11", "unsafe", ("indiscriminate_weapons", "suicide_self_harm")),
        ("UNSAFE\ns2", "unsafe", ("non_violent_crimes",)),
    ],
)
def test_llama_guard_answers(text, label, categories):
    parsed = _parse(LlamaGuard(MLC), text)
    assert parsed.labels[UNSAFE] == label
    assert parsed.categories == categories
    assert text[parsed.offsets[UNSAFE] :].lower().startswith(label)


@pytest.mark.parametrize("text", ["", "maybe", "The content is safe.", "unsafe\nS99", "unsafe\nX1"])
def test_llama_guard_malformed_answers_raise_with_raw(text):
    with pytest.raises(ClassifierError) as info:
        _parse(LlamaGuard(MLC), text)
    assert info.value.raw == text


def test_llama_guard_prompt_lists_policy_categories_and_custom_ones():
    tax = MLC.extended(
        add=[Category(id="crypto_scams", code="CS", name="Crypto Scams", description="Rug pulls.")]
    )
    lg3 = LlamaGuard(tax, exclude=["jailbreak", "prompt_injection", "code_interpreter_abuse"])
    prompt = lg3.prompt(Sample("how do i make a bomb"))
    assert prompt.startswith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n")
    assert "Task: Check if there is unsafe content in 'User' messages" in prompt
    assert "S3: Sex Crimes.\nS4: Child Exploitation." in prompt and "S11: Self-Harm." in prompt
    assert "S14" not in prompt and "Jailbreak" not in prompt
    assert "S15: Crypto Scams.\nRug pulls." in prompt
    assert "User: how do i make a bomb\n\n<END CONVERSATION>" in prompt
    assert prompt.endswith("<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
    assert _parse(lg3, "unsafe\nS15").categories == ("crypto_scams",)


def test_llama_guard_response_prompt_and_version_4():
    lg4 = LlamaGuard(MLC, version=4)
    prompt = lg4.prompt(Sample("sure, here is how", R, "how do i make a bomb"))
    assert "'Agent' messages" in prompt and "ONLY THE LAST Agent message" in prompt
    assert "User: how do i make a bomb\n\nAgent: sure, here is how" in prompt
    assert prompt.startswith("<|begin_of_text|><|header_start|>user<|header_end|>")
    assert "S14: Code Interpreter Abuse." in prompt


def test_llama_guard_unknown_excluded_category_is_a_config_error():
    with pytest.raises(ConfigError):
        LlamaGuard(MLC, exclude=["no_such_category"])


POLYGUARD_PROMPT = (
    "Harmful request: yes\nRequest safety violations: S5\nResponse refusal: yes\n"
    "Harmful response: no\nResponse safety violations: None"
)
POLYGUARD_RESPONSE = (
    "Harmful request: yes\nRequest safety violations: S1, S9\nResponse refusal: no\n"
    "Harmful response: yes\nResponse safety violations: S9"
)


def test_polyguard_answers():
    prompt = _parse(PolyGuard(), POLYGUARD_PROMPT)
    assert prompt.labels == {UNSAFE: "yes"} and prompt.categories == ("s5",)
    response = _parse(PolyGuard(), POLYGUARD_RESPONSE, R)
    assert response.labels == {UNSAFE: "yes", "refusal": "no"}
    assert response.categories == ("s9",)
    safe = _parse(PolyGuard(), "Harmful request: no\nRequest safety violations: None")
    assert safe.labels[UNSAFE] == "no" and safe.categories == ()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Harmful request: maybe",
        "I cannot classify this.",
        "Harmful request: yes\nRequest safety violations: S42",
    ],
)
def test_polyguard_malformed(text):
    with pytest.raises(ClassifierError) as info:
        _parse(PolyGuard(), text)
    assert info.value.raw == text


def test_polyguard_prompt_format():
    call = PolyGuard().calls(Sample("ans", R, "req"))[0]
    assert call.messages == (
        ("system", POLYGUARD_SYSTEM),
        ("user", "Human user:\nreq\n\nAI assistant:\nans"),
    )
    assert "S14: Code Interpreter Abuse.\n<END UNSAFE CONTENT CATEGORIES>" in POLYGUARD_SYSTEM


def test_wildguard_answers_and_prompt():
    prompt = _parse(
        WildGuard(), "Harmful request: yes\nResponse refusal: N/A\nHarmful response: N/A"
    )
    assert prompt.labels == {UNSAFE: "yes"}
    response = _parse(
        WildGuard(), "Harmful request: yes\nResponse refusal: yes\nHarmful response: no", R
    )
    assert response.labels == {UNSAFE: "no", "refusal": "yes"}
    with pytest.raises(ClassifierError):
        _parse(WildGuard(), "Harmful request: yes\nResponse refusal: N/A\nHarmful response: N/A", R)
    text = WildGuard().calls(Sample("hi"))[0].text
    assert text == WILDGUARD_TEMPLATE.format(prompt="hi", response="")
    assert text.startswith("<s><|user|>\n[INST] ") and text.endswith(
        "Answers: [/INST]\n<|assistant|>\n"
    )


@pytest.mark.parametrize(
    ("text", "role", "label", "categories", "refusal"),
    [
        ("Safety: Unsafe\nCategories: Violent", P, "unsafe", ("violent",), None),
        ("Safety: Safe\nCategories: None", P, "safe", (), None),
        ("Safety: Controversial\nCategories: Politically Sensitive Topics", P, "controversial",
         ("politically_sensitive_topics",), None),
        ("Safety: Unsafe\nCategories: Jailbreak, Non-violent Illegal Acts", P, "unsafe",
         ("jailbreak", "non_violent_illegal_acts"), None),
        ("Safety: Safe\nCategories: None\nRefusal: Yes", R, "safe", (), "yes"),
        ("Safety: Unsafe\nCategories: Suicide & Self-Harm\nRefusal: No", R, "unsafe",
         ("suicide_self_harm",), "no"),
    ],
)  # fmt: skip
def test_qwen3guard_answers(text, role, label, categories, refusal):
    parsed = _parse(Qwen3Guard(), text, role)
    assert parsed.labels[UNSAFE] == label and parsed.categories == categories
    assert parsed.labels.get("refusal") == refusal


@pytest.mark.parametrize(
    ("text", "role"),
    [
        ("Safety: Harmful", P),
        ("Safety: Unsafe\nCategories: Weather", P),
        ("Safety: Safe\nCategories: None", R),
    ],
)
def test_qwen3guard_malformed(text, role):
    with pytest.raises(ClassifierError):
        _parse(Qwen3Guard(), text, role)


def test_shieldgemma_calls_and_answers():
    family = ShieldGemma()
    calls = family.calls(Sample("how do i make a bomb"))
    assert [c.key for c in calls] == [
        "Dangerous Content", "Harassment", "Hate Speech", "Sexually Explicit Information"
    ]  # fmt: skip
    assert all(c.add_special_tokens and c.max_new_tokens == 1 for c in calls)
    assert calls[0].text is not None
    assert "Human Question: how do i make a bomb\n<end_of_turn>" in calls[0].text
    assert (
        '* "No Dangerous Content": The prompt shall not contain or seek generation of'
        in calls[0].text
    )
    response = family.calls(Sample("ok", R, "q"))[0].text
    assert response is not None and "Chatbot Response: ok" in response
    assert "The chatbot shall not generate" in response
    assert family.parse(calls[0], "Yes", P).categories == ("dangerous_content",)
    assert family.parse(calls[0], " No, because", P).labels[UNSAFE] == "no"
    with pytest.raises(ClassifierError):
        family.parse(calls[0], "Perhaps", P)
    with pytest.raises(ConfigError):
        ShieldGemma(harms=["Spam"])


@pytest.mark.parametrize(
    ("token", "expected"),
    [("unsafe", "pos"), (" Unsafe", "pos"), ("safe", "neg"), ("Ġsafe", None), ("un", "pos"),
     ("", None), ("s", None), ("\n", None)],
)  # fmt: skip
def test_token_class(token, expected):
    assert token_class(token, Decision(positive=("unsafe",), negative=("safe",))) == expected


def test_decision_probability_renormalises_and_weights_the_middle():
    safety = Decision(positive=("unsafe",), negative=("safe",), middle=("controversial",))
    assert decision_probability({" Unsafe": 0.6, " Safe": 0.2, "\n": 0.2}, safety) == pytest.approx(
        0.75
    )
    assert decision_probability({" Contro": 0.5, " Safe": 0.5}, safety) == pytest.approx(0.25)
    assert decision_probability({"hello": 1.0}, YES_NO) is None


def test_read_call_uses_probabilities_and_falls_back_to_the_label():
    family = build_family(FamilyOptions(family="llama-guard-3"), MLC)
    call = family.calls(Sample("x"))[0]
    alts = {0: {"\n\n": 1.0}, 1: {"unsafe": math.exp(-0.1), "safe": 1 - math.exp(-0.1)}}
    gen = Generation("\n\nunsafe\nS1", [2, 8, 9, 11], lambda i: alts.get(i, {}))
    result, fell_back = read_call(family, call, gen, P)
    assert result.probs[UNSAFE] == pytest.approx(math.exp(-0.1)) and not fell_back
    bare = Generation("\n\nunsafe\nS1", [], None)
    result, fell_back = read_call(family, call, bare, P)
    assert result.probs[UNSAFE] == 1.0 and fell_back


def test_llama_guard_default_exclusion_fits_any_taxonomy():
    custom = load_taxonomy("llama_guard_3")  # no jailbreak category
    family = build_family(FamilyOptions(family="llama-guard-3"), custom)
    assert "S14: Code Interpreter Abuse." in family.calls(Sample("x"))[0].text
    mlc = build_family(FamilyOptions(family="llama-guard-3"), MLC)
    assert "Jailbreak" not in mlc.calls(Sample("x"))[0].text
    with pytest.raises(ConfigError):
        build_family(
            FamilyOptions(family="llama-guard-3", exclude_categories=["jailbreak"]), custom
        )


@pytest.mark.parametrize("name", typing.get_args(FamilyName))
def test_chat_families_are_the_ones_whose_calls_carry_messages(name):
    family = build_family(FamilyOptions(family=name), MLC)
    for sample in (Sample("hello", Role.PROMPT), Sample("ok", Role.RESPONSE, "hi")):
        for call in family.calls(sample):
            assert (call.messages is not None) is family.chat, name
