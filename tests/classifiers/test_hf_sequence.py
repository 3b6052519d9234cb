"""hf-sequence on tiny XLM-R classifiers built and saved locally (no hub)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from tiny_models import WORDS, save_encoder

from guardrail import Guard, load_policy
from guardrail.classifiers.hub.hf_sequence import HFSequenceClassifier
from guardrail.errors import ConfigError
from guardrail.taxonomy import load_taxonomy
from guardrail.types import Role, Sample

MLC = load_taxonomy("mlcommons")
BINARY = {0: "safe", 1: "unsafe"}


@pytest.fixture(scope="module")
def encoders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("encoders")
    return {
        "unsafe": save_encoder(root / "unsafe", BINARY, bias=[0.0, 5.0]),
        "safe": save_encoder(root / "safe", BINARY, bias=[5.0, 0.0]),
        "random": save_encoder(root / "random", BINARY, bias=[0.0, 0.0], zero_weights=False),
        "multiclass": save_encoder(
            root / "multiclass", {0: "safe", 1: "hate", 2: "violence"}, bias=[0.0, 3.0, 1.0]
        ),
        "multilabel": save_encoder(
            root / "multilabel", {0: "hate", 1: "violence"}, bias=[4.0, -4.0], multi_label=True
        ),
        "generic": save_encoder(root / "generic", {0: "LABEL_0", 1: "LABEL_1"}, bias=[0.0, 5.0]),
    }


def _clf(path: Path, **options: object) -> HFSequenceClassifier:
    opts = HFSequenceClassifier.Options(model=str(path), device="cpu", **options)
    return HFSequenceClassifier(opts, taxonomy=MLC)


def test_binary_orientation(encoders):
    [unsafe] = _clf(encoders["unsafe"]).score([Sample("how do i make a bomb")])
    [safe] = _clf(encoders["safe"]).score([Sample("how do i bake bread")])
    assert unsafe.unsafe > 0.9 and safe.unsafe < 0.1
    assert unsafe.categories == {} and unsafe.classifier == "hf-sequence"


def test_multiclass_head_maps_labels_to_categories(encoders):
    clf = _clf(
        encoders["multiclass"],
        label_map={"safe": "safe", "hate": "hate", "violence": ["violent_crimes"]},
    )
    [scores] = clf.score([Sample("hello")])
    assert scores.categories["hate"] > scores.categories["violent_crimes"] > 0.1
    assert scores.unsafe == pytest.approx(
        scores.categories["hate"] + scores.categories["violent_crimes"]
    )


def test_multilabel_head_uses_sigmoids(encoders):
    clf = _clf(encoders["multilabel"], label_map={"hate": "hate", "violence": "violent_crimes"})
    [scores] = clf.score([Sample("hello")])
    assert scores.categories["hate"] > 0.9 and scores.categories["violent_crimes"] < 0.1
    assert scores.unsafe == pytest.approx(scores.categories["hate"])


def test_generic_labels_need_a_label_map(encoders):
    with pytest.raises(ConfigError, match="LABEL_0"):
        _clf(encoders["generic"])
    clf = _clf(encoders["generic"], label_map={"LABEL_0": "safe", "LABEL_1": "unsafe"})
    assert clf.score([Sample("hi")])[0].unsafe > 0.9
    with pytest.raises(ConfigError, match="no_such"):
        _clf(encoders["generic"], label_map={"LABEL_0": "safe", "LABEL_1": "no_such"})


def test_long_text_windows_take_the_maximum(encoders):
    clf = _clf(encoders["random"], max_length=24, stride=4)
    text = " ".join(WORDS[(i * 7) % len(WORDS)] for i in range(150))
    [long] = clf.score([Sample(text)])
    tok = clf._loaded.tokenizer
    enc = tok(text, truncation=True, max_length=24, stride=4, return_overflowing_tokens=True)
    windows = [tok.decode(ids, skip_special_tokens=True) for ids in enc["input_ids"]]
    assert len(windows) > 5
    assert long.notes == (f"scored in {len(windows)} windows (max taken)",)
    each = [s.unsafe for s in clf.score([Sample(w) for w in windows])]
    assert long.unsafe == pytest.approx(max(each), abs=1e-5)
    assert min(each) < max(each)  # the windows really differ, so the maximum means something


def test_batching_does_not_change_scores(encoders):
    texts = [Sample(" ".join(WORDS[i : i + 3 + i % 5])) for i in range(7)]
    one = _clf(encoders["random"], batch_size=1).score(texts)
    many = _clf(encoders["random"], batch_size=4).score(texts)
    assert [s.unsafe for s in one] == pytest.approx([s.unsafe for s in many], abs=1e-5)


def test_response_scored_with_its_prompt_as_a_pair(encoders):
    clf = _clf(encoders["random"], pair_context=True)
    alone = _clf(encoders["random"]).score(
        [Sample("sure here is the recipe", Role.RESPONSE, "how do i make a bomb")]
    )
    paired = clf.score([Sample("sure here is the recipe", Role.RESPONSE, "how do i make a bomb")])
    assert alone[0].unsafe != pytest.approx(paired[0].unsafe, abs=1e-6)


def test_through_a_policy_and_guard(encoders, tmp_path):
    policy = tmp_path / "crest.yaml"
    policy.write_text(
        "name: crest-test\nclassifier:\n  name: hf-sequence\n  options:\n"
        f"    model: {encoders['unsafe']}\n    device: cpu\n"
        "thresholds:\n  prompt:\n    unsafe: {flag_at: 0.5, block_at: 0.8}\n"
    )
    verdict = Guard(load_policy(policy)).check_prompt("how do i make a bomb")
    assert verdict.blocked and verdict.classifier == "hf-sequence"


def test_missing_model_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot load model"):
        _clf(tmp_path / "missing", local_files_only=True)


@pytest.mark.parametrize("quantization", ["int8", "nf4"])
def test_quantized_encoder_on_cpu(encoders, quantization):
    pytest.importorskip("bitsandbytes")
    clf = _clf(encoders["unsafe"], quantization=quantization)
    kinds = {type(m).__name__ for m in clf._loaded.model.modules()}
    assert ("Linear8bitLt" if quantization == "int8" else "Linear4bit") in kinds
    assert clf.score([Sample("how do i make a bomb")])[0].unsafe > 0.9
