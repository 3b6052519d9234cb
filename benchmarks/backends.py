"""Hub backends: overhead against bare model calls, CPU quantization, and cascade escalation.

    python benchmarks/backends.py [--quick] [--skip-cascade]

Nothing downloads. Models are randomly initialised with real architectures' shapes and saved to
a temporary folder, then loaded through the backends' own loading code:

- hf-sequence: an XLM-R classifier with multilingual-MiniLM-L12-H384's layer shape and a
  32k byte-level BPE vocabulary trained here on the dev texts. "bare" is ``model(**inputs)`` on
  texts tokenised beforehand (outside the timer).
- hf-generative (Llama Guard 3 family): a Llama with SmolLM2-135M's width (576, 9 heads, 3 KV
  heads, MLP 1536, vocab 49,152) but 4 of its 30 layers, so the run fits a shared 2-core CPU.
  Its layers are zeroed and its output layer programmed (tests/classifiers/tiny_models.py) so
  that it answers "safe" in Llama Guard's format; zeroed weights cost the same dense matmuls as
  random ones. "bare forward" is one ``model(**inputs)`` prefill of the same templated prompts;
  "bare generate" is ``model.generate`` on them with the same stopping, so ours / bare-generate
  is the cost of templating, tokenising, reading probabilities and parsing.
- openai-guard: a local stdlib HTTP server returns one Llama Guard completion with logprobs;
  "bare" posts prebuilt payloads with the same pooled ``httpx.Client``.
- quantization: the generative model with int8 / nf4 (bitsandbytes on CPU) against float32.
- cascade: the embedded classifier as the first stage on the ``../shared/data`` dev split; the
  share of rows that go to the second stage, per bound setting and per language.

Prints tables and writes ``benchmarks/results/backends.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "classifiers"))
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "backends.json"
BATCHES = (1, 8, 32)


def _texts(n: int, seed: int = 0) -> list[str]:
    from guardrail._data import dev_split

    rows = [r for r in dev_split(DATA) if r.role == "prompt" and 20 <= len(r.text) <= 600]
    random.Random(seed).shuffle(rows)
    return [r.text for r in rows[:n]]


def _rate(fn: Callable[[], object], n: int, repeats: int = 2) -> float:
    """Texts per second, best of ``repeats`` runs (the CPU is shared, so the best is the
    least disturbed)."""
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return n / best


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# -- hf-sequence ---------------------------------------------------------------------------


def _bpe_tokenizer(texts: list[str], vocab: int) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    inner = Tokenizer(models.BPE(unk_token="<unk>"))
    inner.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    inner.decoder = decoders.ByteLevel()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=specials, show_progress=False)
    inner.train_from_iterator(texts, trainer)
    inner.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=inner, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        unk_token="<unk>", cls_token="<s>", sep_token="</s>", mask_token="<mask>",
    )  # fmt: skip


def bench_sequence(tmp: Path, texts: list[str], n: int) -> list[dict[str, Any]]:
    import torch
    import transformers as tf

    from guardrail.classifiers.hub.hf_sequence import HFSequenceClassifier
    from guardrail.taxonomy import load_taxonomy
    from guardrail.types import Sample

    tok = _bpe_tokenizer(texts, 32_000)
    config = tf.XLMRobertaConfig(
        vocab_size=len(tok), hidden_size=384, num_hidden_layers=12, num_attention_heads=12,
        intermediate_size=1536, max_position_embeddings=514, pad_token_id=1,
        id2label={0: "safe", 1: "unsafe"}, label2id={"safe": 0, "unsafe": 1},
    )  # fmt: skip
    torch.manual_seed(0)
    tf.XLMRobertaForSequenceClassification(config).save_pretrained(tmp / "seq")
    tok.save_pretrained(tmp / "seq")
    rows = []
    sample_texts = texts[:n]
    for bs in BATCHES:
        opts = HFSequenceClassifier.Options(
            model=str(tmp / "seq"), device="cpu", max_length=128, batch_size=bs
        )
        clf = HFSequenceClassifier(opts, taxonomy=load_taxonomy("mlcommons"))
        model, tokz = clf._loaded.model, clf._loaded.tokenizer
        samples = [Sample(t) for t in sample_texts]
        encoded = [
            tokz(chunk, truncation=True, max_length=128, padding=True, return_tensors="pt")
            for chunk in _chunks(sample_texts, bs)
        ]

        def bare(encoded: list[Any] = encoded, model: Any = model) -> None:
            with torch.inference_mode():
                for enc in encoded:
                    model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])

        clf.score(samples[:bs])  # warm-up
        ours = _rate(lambda clf=clf, samples=samples: clf.score(samples), len(samples))
        raw = _rate(bare, len(samples))
        rows.append({"backend": "hf-sequence", "batch": bs, "texts": len(samples),
                     "ours_texts_s": ours, "bare_texts_s": raw, "ratio": ours / raw})  # fmt: skip
    return rows


# -- hf-generative -------------------------------------------------------------------------

LG_TOKENS = ["\n\n", "<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
             "<|eot_id|>", "unsafe", "safe", "\n", "S1"]  # fmt: skip


def _save_generative(path: Path) -> Path:
    import torch
    import transformers as tf
    from tiny_models import build_tokenizer, program

    tok = build_tokenizer(LG_TOKENS)
    config = tf.LlamaConfig(
        vocab_size=49_152, hidden_size=576, intermediate_size=1536, num_hidden_layers=4,
        num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=2048,
        tie_word_embeddings=False, pad_token_id=0, eos_token_id=1, bos_token_id=3,
    )  # fmt: skip
    torch.manual_seed(0)
    model = tf.AutoModelForCausalLM.from_config(config)
    program(model, tok, {"\n\n": {"safe": 6.0, "unsafe": 2.0}, "safe": {"<eos>": 12.0}})
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def _generative(path: Path, bs: int, quantization: str = "none") -> Any:
    from guardrail.classifiers.hub.hf_generative import HFGenerativeClassifier
    from guardrail.taxonomy import load_taxonomy

    opts = HFGenerativeClassifier.Options(
        model=str(path), family="llama-guard-3", device="cpu", batch_size=bs,
        quantization=quantization,
    )  # fmt: skip
    return HFGenerativeClassifier(opts, taxonomy=load_taxonomy("mlcommons"))


def bench_generative(path: Path, texts: list[str], quick: bool) -> list[dict[str, Any]]:
    import torch

    from guardrail.types import Sample

    rows = []
    for bs in BATCHES:
        n = max(bs, 4 if quick else 8)
        clf = _generative(path, bs)
        model, tok = clf._loaded.model, clf._loaded.tokenizer
        samples = [Sample(t) for t in texts[:n]]
        prompts = [clf.family.calls(s)[0].text for s in samples]
        batches = []
        for chunk in _chunks(prompts, bs):
            ids = [tok.encode(p, add_special_tokens=False) for p in chunk]
            width = max(map(len, ids))
            batches.append((
                torch.tensor([[0] * (width - len(x)) + x for x in ids]),
                torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids]),
            ))  # fmt: skip

        def forward(batches: list[Any] = batches, model: Any = model) -> None:
            with torch.inference_mode():
                for ids, mask in batches:
                    model(input_ids=ids, attention_mask=mask, logits_to_keep=1)

        def generate(batches: list[Any] = batches, model: Any = model) -> None:
            with torch.inference_mode():
                for ids, mask in batches:
                    model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=24,
                                   do_sample=False, eos_token_id=1, pad_token_id=0)  # fmt: skip

        clf.score(samples[:1])  # warm-up
        ours = _rate(lambda clf=clf, samples=samples: clf.score(samples), n)
        fwd = _rate(forward, n)
        gen = _rate(generate, n)
        rows.append({"backend": "hf-generative (llama-guard-3)", "batch": bs, "texts": n,
                     "ours_texts_s": ours, "bare_texts_s": fwd, "ratio": ours / fwd,
                     "bare_generate_texts_s": gen, "ratio_vs_generate": ours / gen})  # fmt: skip
    return rows


def bench_quantization(path: Path, texts: list[str], quick: bool) -> list[dict[str, Any]]:
    from guardrail.classifiers.hub import _loading as _hf_loading
    from guardrail.types import Sample

    n = 8 if quick else 16
    samples = [Sample(t) for t in texts[:n]]
    rows = []
    for mode in ("none", "int8", "nf4"):
        _hf_loading.clear_cache()
        clf = _generative(path, 8, mode)
        clf.score(samples[:1])
        scores = clf.score(samples)
        rate = _rate(lambda clf=clf: clf.score(samples), n)
        layers = clf._loaded.model.model.layers
        layer_bytes = sum(p.numel() * p.element_size() for p in layers.parameters())
        rows.append({"quantization": mode if mode != "none" else "float32",
                     "memory_mb": clf._loaded.model.get_memory_footprint() / 2**20,
                     "layers_mb": layer_bytes / 2**20,
                     "texts_s": rate, "mean_unsafe": sum(s.unsafe for s in scores) / n})  # fmt: skip
    base = rows[0]
    for row in rows:
        row["memory_vs_fp32"] = row["memory_mb"] / base["memory_mb"]
        row["layers_vs_fp32"] = row["layers_mb"] / base["layers_mb"]
        row["speed_vs_fp32"] = row["texts_s"] / base["texts_s"]
    return rows


# -- openai-guard --------------------------------------------------------------------------


def _server() -> tuple[ThreadingHTTPServer, str]:
    tops = [{"\n\n": -0.01}, {"safe": math.log(0.9), "unsafe": math.log(0.1)}]
    payload = json.dumps({"choices": [{"text": "\n\nsafe", "logprobs": {
        "tokens": ["\n\n", "safe"], "token_logprobs": [-0.01, math.log(0.9)], "top_logprobs": tops,
    }}]}).encode()  # fmt: skip

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/v1"


def bench_openai(texts: list[str], n: int) -> list[dict[str, Any]]:
    from concurrent.futures import ThreadPoolExecutor

    from guardrail.classifiers.hub.openai_guard import OpenAIGuardClassifier
    from guardrail.taxonomy import load_taxonomy
    from guardrail.types import Sample

    httpd, url = _server()
    rows = []
    try:
        for bs in BATCHES:
            opts = OpenAIGuardClassifier.Options(
                base_url=url, model="guard", family="llama-guard-3", concurrency=8
            )
            clf = OpenAIGuardClassifier(opts, taxonomy=load_taxonomy("mlcommons"))
            samples = [Sample(t) for t in texts[:n]]
            bodies = [clf._payload(clf.family.calls(s)[0])[1] for s in samples]

            def ours(clf: Any = clf, samples: list[Sample] = samples, bs: int = bs) -> None:
                for chunk in _chunks(samples, bs):
                    clf.score(chunk)

            def bare(clf: Any = clf, bodies: list[Any] = bodies, bs: int = bs) -> None:
                with ThreadPoolExecutor(max_workers=8) as pool:
                    for chunk in _chunks(bodies, bs):
                        list(
                            pool.map(
                                lambda b: clf._client.post("/completions", json=b).json(), chunk
                            )
                        )

            ours()
            rows.append({"backend": "openai-guard (llama-guard-3, local server)", "batch": bs,
                         "texts": n, "ours_texts_s": _rate(ours, n), "bare_texts_s": _rate(bare, n)})  # fmt: skip
            rows[-1]["ratio"] = rows[-1]["ours_texts_s"] / rows[-1]["bare_texts_s"]
            clf.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    return rows


# -- cascade -------------------------------------------------------------------------------


def bench_cascade(limit: int | None) -> dict[str, Any]:
    from guardrail._data import dev_split
    from guardrail.classifiers.cascade import CascadeClassifier
    from guardrail.language import detect_language, normalize_language
    from guardrail.policy import load_policy
    from guardrail.registry import create_classifier
    from guardrail.taxonomy import load_taxonomy
    from guardrail.types import Role, Sample

    rows = dev_split(DATA)
    if limit is not None:
        random.Random(0).shuffle(rows)
        rows = rows[:limit]
    taxonomy = load_taxonomy("mlcommons")
    embedded = create_classifier(_spec("embedded"), taxonomy=taxonomy)
    samples = [
        Sample(r.text, Role(r.role), r.prompt,
               normalize_language(r.lang) if r.lang else detect_language(r.text)[0])
        for r in rows
    ]  # fmt: skip
    start = time.perf_counter()
    firsts = [s for chunk in _chunks(samples, 256) for s in embedded.score(chunk)]
    elapsed = time.perf_counter() - start
    example = CascadeClassifier.Options.model_validate(load_policy("cascade").classifier.options)
    settings = [(0.15, 0.85, example.languages), (0.2, 0.8, example.languages),
                (0.3, 0.7, example.languages), (0.15, 0.85, None)]  # fmt: skip
    out: dict[str, Any] = {"rows": len(rows), "first_stage_texts_s": len(rows) / elapsed,
                           "settings": []}  # fmt: skip
    for low, high, langs in settings:
        opts = example.model_copy(
            update={"escalate_from": low, "escalate_below": high, "languages": langs}
        )
        cascade = CascadeClassifier(opts, taxonomy=taxonomy, first=embedded, second=embedded)
        reasons = [cascade.escalation_reason(s, f) for s, f in zip(samples, firsts, strict=True)]
        per_lang: dict[str, list[int]] = {}
        for s, reason in zip(samples, reasons, strict=True):
            per_lang.setdefault(s.language or "und", []).append(reason is not None)
        out["settings"].append({
            "escalate_from": low, "escalate_below": high,
            "languages": "example policy's 15" if langs else "all covered",
            "escalated_share": sum(r is not None for r in reasons) / len(rows),
            "by_score": sum(r is not None and "score" in r for r in reasons) / len(rows),
            "by_language": sum(r is not None and "language" in r for r in reasons) / len(rows),
            "per_language": {k: sum(v) / len(v) for k, v in sorted(per_lang.items()) if len(v) >= 50},
        })  # fmt: skip
    return out


def _spec(name: str) -> Any:
    from guardrail.policy import ClassifierSpec

    return ClassifierSpec(name=name)


# -- main ----------------------------------------------------------------------------------


def _table(title: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n{title}")
    if not rows:
        return
    keys = list(rows[0])
    print(" | ".join(keys))
    for row in rows:
        print(
            " | ".join(f"{row[k]:.3g}" if isinstance(row[k], float) else str(row[k]) for k in keys)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer texts per measurement")
    parser.add_argument("--skip-cascade", action="store_true")
    parser.add_argument("--cascade-limit", type=int, default=None, help="dev rows for cascade")
    args = parser.parse_args()
    import torch

    torch.manual_seed(0)
    texts = _texts(2000)
    result: dict[str, Any] = {"torch_threads": torch.get_num_threads(), "device": "cpu"}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        result["overhead"] = bench_sequence(tmp, texts, 32 if args.quick else 64)
        gen_path = _save_generative(tmp / "gen")
        result["overhead"] += bench_generative(gen_path, texts, args.quick)
        result["overhead"] += bench_openai(texts, 64 if args.quick else 256)
        for backend in dict.fromkeys(r["backend"] for r in result["overhead"]):
            rows = [r for r in result["overhead"] if r["backend"] == backend]
            _table(f"Overhead of {backend} (texts/s; ratio = ours / bare)", rows)
        result["quantization"] = bench_quantization(gen_path, texts, args.quick)
        _table("Quantization on CPU (hf-generative, batch 8)", result["quantization"])
    if not args.skip_cascade:
        result["cascade"] = bench_cascade(args.cascade_limit)
        print(f"\nCascade on the dev split ({result['cascade']['rows']} rows, first stage embedded,"
              f" {result['cascade']['first_stage_texts_s']:.0f} texts/s)")  # fmt: skip
        _table("escalation", [{k: v for k, v in s.items() if k != "per_language"}
                              for s in result["cascade"]["settings"]])  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
