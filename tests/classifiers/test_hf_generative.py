"""hf-generative on tiny programmed models of each family's architecture (no hub, no network).

Each model is a bigram program (see tiny_models.py) that writes an answer in the family's
documented format, with a chosen distribution at the decision token, and is loaded from disk
through the real loading code.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

pytest.importorskip("torch")

from tiny_models import CHATML, chain, save_decoder, save_llama4_guard

from guardrail import Guard, load_policy
from guardrail.classifiers.hub import _loading as _hf_loading
from guardrail.classifiers.hub.hf_generative import HFGenerativeClassifier
from guardrail.errors import ClassifierError
from guardrail.taxonomy import load_taxonomy
from guardrail.types import Role, Sample

MLC = load_taxonomy("mlcommons")
LG3_TOKENS = ["\n\n", "<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
              "<|eot_id|>", "unsafe", "safe", "\n", "S1", ",", "S10", "maybe"]  # fmt: skip
LG4_TOKENS = ["\n\n", "<|header_start|>", "<|header_end|>", "<|eot|>", "unsafe", "safe", "\n",
              "S1", "S15"]  # fmt: skip
PG_TOKENS = ["<|im_start|>", "<|im_end|>", "Harmful request:", "\nRequest safety violations:",
             "\nResponse refusal:", "\nHarmful response: ", "\nResponse safety violations:",
             " yes", " no", "yes", "no", " S1", " None"]  # fmt: skip
QG_TOKENS = ["<|im_start|>", "<|im_end|>", "Safety:", " Unsafe", " Safe", " Controversial",
             "\nCategories:", " Violent", " None", "\nRefusal:", " Yes", " No"]  # fmt: skip
WG_TOKENS = ["<|assistant|>", "<|user|>", "Harmful request:", " yes", " no",
             "\nResponse refusal: ", "N/A", "\nHarmful response:", " N/A"]  # fmt: skip
SG_TOKENS = ["Yes", "No", "<start_of_turn>", "<end_of_turn>"]


def _lg(first: dict[str, float]) -> dict[str, dict[str, float]]:
    return chain(["\n\n", "unsafe", "\n", "S1", ",", "S10"], at={"\n\n": first})


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("guards")
    pg_prompt = chain(
        ["assistant", "Harmful request:", " yes", "\nRequest safety violations:", " S1"]
    )
    pg_response = chain(
        ["assistant", "Harmful request:", " no", "\nResponse refusal:", " yes",
         "\nHarmful response: ", "no", "\nResponse safety violations:", " None"],
        at={"\nResponse refusal:": {" yes": 5.0, " no": 0.0},
            "\nHarmful response: ": {"no": 4.0, "yes": 0.0}},
    )  # fmt: skip
    qg = chain(["assistant", "Safety:", " Unsafe", "\nCategories:", " Violent"])
    specs = {
        "lg3_unsafe": ("llama", LG3_TOKENS, _lg({"unsafe": 6.0, "safe": 0.0}), None),
        "lg3_safe": ("llama", LG3_TOKENS, _lg({"safe": 6.0, "unsafe": 0.0}), None),
        "lg3_bad": ("llama", LG3_TOKENS, chain(["\n\n", "maybe"]), None),
        "lg4_unsafe": ("llama4", LG4_TOKENS, chain(["\n\n", "unsafe", "\n", "S15"]), None),
        "pg_prompt": ("qwen3", PG_TOKENS, pg_prompt, CHATML),
        "pg_response": ("qwen3", PG_TOKENS, pg_response, CHATML),
        "qg_unsafe": ("qwen3", QG_TOKENS, qg, CHATML),
        "qg_contro": ("qwen3", QG_TOKENS,
                      {**qg, "Safety:": {" Controversial": 8.0}, " Controversial": {"\nCategories:": 12.0}},
                      CHATML),
        "wg": ("mistral", WG_TOKENS,
               chain(["<|assistant|>", "Harmful request:", " yes", "\nResponse refusal: ", "N/A",
                      "\nHarmful response:", " N/A"]), None),
        "sg_yes": ("gemma2", SG_TOKENS, {"correctly.": {"Yes": 6.0, "No": 0.0}}, None),
        "sg_no": ("gemma3", SG_TOKENS, {"correctly.": {"No": 6.0, "Yes": 0.0}}, None),
    }  # fmt: skip
    paths = {
        name: save_decoder(root / name, arch, tokens, table, chat_template=template)
        for name, (arch, tokens, table, template) in specs.items()
    }
    # Llama Guard 4 ships as a multimodal Llama 4; its text model is read out of that layout.
    lg4_table = chain(["\n\n", "unsafe", "\n", "S1"])
    paths["lg4_multimodal"] = save_llama4_guard(root / "lg4_multimodal", LG4_TOKENS, lg4_table)
    return paths


def _clf(path: Path, family: str, **options: object) -> HFGenerativeClassifier:
    opts = HFGenerativeClassifier.Options(model=str(path), family=family, device="cpu", **options)
    return HFGenerativeClassifier(opts, taxonomy=MLC)


def test_llama_guard_3_unsafe_orientation_and_categories(models):
    [scores] = _clf(models["lg3_unsafe"], "llama-guard-3").score([Sample("how do i make a bomb")])
    assert scores.unsafe > 0.9
    assert math.isclose(scores.unsafe, math.exp(6) / (math.exp(6) + 1), rel_tol=1e-3)
    assert set(scores.categories) == {"violent_crimes", "hate"}
    assert scores.refusal is None and scores.notes == ()


def test_llama_guard_3_safe_orientation(models):
    [scores] = _clf(models["lg3_safe"], "llama-guard-3").score([Sample("hello world")])
    assert scores.unsafe < 0.1
    assert scores.categories == {}


def test_malformed_answer_is_an_error_with_the_raw_text(models):
    clf = _clf(models["lg3_bad"], "llama-guard-3")
    with pytest.raises(ClassifierError) as info:
        clf.score([Sample("hello")])
    assert info.value.raw is not None and "maybe" in info.value.raw


def test_malformed_answer_fails_closed_through_the_guard(models, tmp_path):
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "name: lg\nclassifier:\n  name: hf-generative\n  options:\n"
        f"    model: {models['lg3_bad']}\n    family: llama-guard-3\n    device: cpu\n"
        "thresholds:\n  prompt:\n    unsafe: {flag_at: 0.5, block_at: 0.8}\n"
    )
    verdict = Guard(load_policy(policy)).check_prompt("hello there")
    assert verdict.blocked and verdict.decided_by == ("error",)


def test_llama_guard_4_custom_category_reaches_the_model(models):
    from guardrail.taxonomy import Category

    taxonomy = MLC.extended(add=[Category(id="weapons_trade", code="WT", name="Weapons Trade")])
    opts = HFGenerativeClassifier.Options(
        model=str(models["lg4_unsafe"]), family="llama-guard-4", device="cpu"
    )
    clf = HFGenerativeClassifier(opts, taxonomy=taxonomy)
    prompt = clf.family.calls(Sample("hello"))[0].text
    assert prompt is not None and "S15: Weapons Trade." in prompt and "<|header_start|>" in prompt
    [scores] = clf.score([Sample("hello")])
    assert scores.unsafe > 0.99
    assert scores.categories == {"weapons_trade": scores.unsafe}


def test_llama_guard_4_from_a_multimodal_checkpoint(models):
    [scores] = _clf(models["lg4_multimodal"], "llama-guard-4").score(
        [Sample("how do i make a bomb")]
    )
    assert scores.unsafe > 0.99
    assert set(scores.categories) == {"violent_crimes"}


def test_polyguard_prompt_maps_s_codes_to_the_policy_taxonomy(models):
    [scores] = _clf(models["pg_prompt"], "polyguard").score([Sample("how do i make a bomb")])
    assert scores.unsafe > 0.99
    assert scores.categories == {"violent_crimes": scores.unsafe}


def test_polyguard_response_refusal_and_harm_probabilities(models):
    sample = Sample("sorry i can't help with that", Role.RESPONSE, "how do i make a bomb")
    [scores] = _clf(models["pg_response"], "polyguard").score([sample])
    assert scores.refusal is not None
    # Both spellings of each answer count (" yes" and "yes"); the unnamed ones have logit 0.
    assert math.isclose(scores.refusal, (math.exp(5) + 1) / (math.exp(5) + 3), rel_tol=1e-3)
    assert math.isclose(scores.unsafe, 2 / (math.exp(4) + 3), rel_tol=1e-3)
    assert scores.categories == {}


def test_qwen3guard_unsafe_and_controversial(models):
    [unsafe] = _clf(models["qg_unsafe"], "qwen3guard").score([Sample("kill someone")])
    assert unsafe.unsafe > 0.99
    assert unsafe.categories == {"violent_crimes": unsafe.unsafe}
    [contro] = _clf(models["qg_contro"], "qwen3guard").score([Sample("kill someone")])
    assert 0.45 < contro.unsafe < 0.55  # Controversial sits between safe and unsafe
    weighted = _clf(models["qg_contro"], "qwen3guard", controversial_weight=0.8)
    assert 0.75 < weighted.score([Sample("kill someone")])[0].unsafe < 0.85


def test_wildguard_prompt(models):
    [scores] = _clf(models["wg"], "wildguard").score([Sample("how do i make a bomb")])
    assert scores.unsafe > 0.99 and scores.categories == {}


def test_shieldgemma_one_call_per_harm_type(models):
    [yes] = _clf(models["sg_yes"], "shieldgemma").score([Sample("how do i make a bomb")])
    assert yes.unsafe > 0.9
    assert {"violent_crimes", "hate", "sexual_content"} <= set(yes.categories)
    [no] = _clf(models["sg_no"], "shieldgemma").score([Sample("nice day")])
    assert no.unsafe < 0.1


def test_batches_give_the_same_scores(models):
    samples = [Sample(t) for t in ["hello", "how do i make a bomb", "nice day", "a", "bread"]]
    one = _clf(models["lg3_unsafe"], "llama-guard-3", batch_size=1).score(samples)
    many = _clf(models["lg3_unsafe"], "llama-guard-3", batch_size=4).score(samples)
    assert [s.unsafe for s in one] == pytest.approx([s.unsafe for s in many], abs=1e-4)


def test_models_load_once_and_are_shared(models):
    a = _clf(models["lg3_safe"], "llama-guard-3")
    b = _clf(models["lg3_safe"], "llama-guard-3", batch_size=2)
    c = _clf(models["lg3_safe"], "llama-guard-3", dtype="bfloat16")
    assert a._loaded is b._loaded
    assert c._loaded is not a._loaded


def test_long_text_is_truncated_with_a_note(models):
    clf = _clf(models["lg3_unsafe"], "llama-guard-3", max_length=700)
    [scores] = clf.score([Sample("hello " * 200)])
    assert scores.unsafe > 0.9
    assert any("truncated" in n for n in scores.notes)


def test_missing_model_is_a_config_error(tmp_path):
    from guardrail.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot load model"):
        _clf(tmp_path / "nope", "llama-guard-3", local_files_only=True)


@pytest.mark.parametrize("quantization", ["int8", "nf4"])
def test_bitsandbytes_quantization_on_cpu(models, quantization):
    pytest.importorskip("bitsandbytes")
    clf = _clf(models["lg3_unsafe"], "llama-guard-3", quantization=quantization)
    weights = {type(m).__name__ for m in clf._loaded.model.modules()}
    assert ("Linear8bitLt" if quantization == "int8" else "Linear4bit") in weights
    [scores] = clf.score([Sample("how do i make a bomb")])
    assert scores.unsafe > 0.9


@pytest.mark.parametrize("device_map", ["auto", "cpu", {"": "cpu"}])
def test_cpu_device_map(models, device_map):
    pytest.importorskip("accelerate")
    clf = _clf(models["lg3_safe"], "llama-guard-3", device_map=device_map)
    assert {p.device.type for p in clf._loaded.model.parameters()} == {"cpu"}
    assert clf.score([Sample("hello")])[0].unsafe < 0.1


def test_clear_cache_forgets_models(models):
    a = _clf(models["lg3_safe"], "llama-guard-3")
    _hf_loading.clear_cache()
    assert _clf(models["lg3_safe"], "llama-guard-3")._loaded is not a._loaded


def test_missing_optional_dependencies_name_the_extra(monkeypatch):
    import sys

    from guardrail.errors import ConfigError

    monkeypatch.setitem(sys.modules, "transformers", None)
    # the hint works from a checkout (no package index has guardrail-sdk)
    with pytest.raises(ConfigError, match=r'pip install "\.\[hf\]" in a checkout'):
        _hf_loading.require_torch()
    monkeypatch.delitem(sys.modules, "transformers")
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)
    opts = _hf_loading.HFLoadOptions(model="x", quantization="nf4")
    with pytest.raises(ConfigError, match="bitsandbytes"):
        _hf_loading.quantization_config(opts, None)


def test_cuda_request_without_a_gpu_is_a_config_error():
    import torch

    from guardrail.errors import ConfigError

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ConfigError, match="cuda"):
        _hf_loading.resolve_device(_hf_loading.HFLoadOptions(model="x", device="cuda"))


@pytest.mark.gpu
@pytest.mark.parametrize("quantization", ["none", "int8", "nf4"])
def test_cuda_float16_and_quantized(models, quantization):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    clf = _clf(models["lg3_unsafe"], "llama-guard-3", device="cuda", quantization=quantization)
    assert next(clf._loaded.model.parameters()).device.type == "cuda"
    assert clf.score([Sample("how do i make a bomb")])[0].unsafe > 0.9
