"""Draws of the recipe: the main head retrained with several seeds, each draw measured.

A trained head is one draw of its recipe. Session 18 found two draws of the shipped recipe that
differ by 2.6 points of CoCoNot's flagged contrast prompts and 7 points of section 13's recall at
the flag, as much as the data changes it was judging: a change compared with the shipped head
alone is compared with one draw. This script retrains the main head (the shipped recipe, its
ensemble) once per ``--seeds`` seed, optionally with ``--extra`` labelled rows added to the
training data (a JSONL file in the data's row format, such as candidate seeds; their train split
only), and measures each draw through ``Guard`` with the policy:

- sections 7 and 13 of ``benchmarks/accuracy.py`` (requests no head trains on), the rows in the
  encoder's languages: recall and FPR at the policy's verdicts, PR-AUC, and recall at the score
  that flags 7% of the section's benign requests (``recall_at_7``);
- CoCoNot's contrast prompts and their look-alike subset (dev split): the share flagged.

Each draw gets the nearest-neighbour memory of its own training prompts; the outside head, the
injection head and the outside memory are the shipped ones, the same in every draw (the outside
head reads no covered text; the injection head's ``prompt_injection`` score can take part in a
verdict, alike in every draw). The table gives each draw and the mean ± standard deviation over the draws; the JSON
(default ``benchmarks/results/draws.json``) gives the figures of every draw. Texts are embedded
once into the cache ``guardrail train`` uses; a draw then takes 2-3 minutes on two cores.

    python benchmarks/draws.py --seeds 0 10 20
    python benchmarks/draws.py --seeds 0 10 20 --extra candidate_seeds.jsonl --out with.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from _accuracy_lolo import CACHE_DIR
from _accuracy_metrics import is_over_refusal, metrics
from accuracy import (
    DEFAULT_DATA,
    DIRECT_REQUESTS,
    MULTILINGUAL_REQUESTS,
    Run,
    _check,
    with_classifier_options,
)

from guardrail import Guard, load_policy
from guardrail._data import Row, dedupe_rows, read_rows, split_rows
from guardrail.classifiers.embedded import ENCODER_LANGUAGES, default_head_dir
from guardrail.classifiers.embedded._train import TrainConfig, train_on, training_rows
from guardrail.errors import GuardrailError

RESULTS = Path(__file__).resolve().parent / "results" / "draws.json"
# The figures of a draw, in the table's order.
FIGURES = (
    "s7_recall",
    "s7_fpr",
    "s7_pr_auc",
    "s7_recall_at_7",
    "s13_recall",
    "s13_fpr",
    "s13_pr_auc",
    "coconot_flagged",
    "lookalike_flagged",
)


def fail(message: str) -> None:
    """One line on stderr, exit status 2."""
    print(f"draws.py: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def recall_at_fpr(y: np.ndarray, score: np.ndarray, fpr: float) -> float | None:
    """Recall at the score that flags ``fpr`` of the negatives (strictly above their quantile)."""
    if not y.any() or y.all():
        return None
    cut = float(np.quantile(score[~y], 1.0 - fpr))
    return float((score[y] > cut).mean())


def section_figures(prefix: str, rows: Sequence[Row], run: Run) -> dict[str, float | None]:
    """Recall / FPR at the verdicts, PR-AUC and recall at 7% FPR on the covered rows."""
    covered = np.array([r.lang in ENCODER_LANGUAGES for r in rows], dtype=bool)
    y = np.array([r.unsafe for r in rows], dtype=bool)[covered]
    score, pred = run.score[covered], run.pred[covered]
    m = metrics(y, pred, score)
    return {
        f"{prefix}_recall": m["recall"],
        f"{prefix}_fpr": m["fpr"],
        f"{prefix}_pr_auc": m["pr_auc"],
        f"{prefix}_recall_at_7": recall_at_fpr(y, score, 0.07),
    }


def summarise(draws: dict[str, dict[str, float | None]]) -> dict[str, dict[str, float | None]]:
    """Per figure: mean, standard deviation (n - 1; None for one draw), min and max over the
    draws that have it."""
    out: dict[str, dict[str, float | None]] = {}
    for name in FIGURES:
        values = np.array([d[name] for d in draws.values() if d.get(name) is not None], float)
        if not len(values):
            continue
        out[name] = {
            "mean": float(values.mean()),
            "sd": float(values.std(ddof=1)) if len(values) > 1 else None,
            "min": float(values.min()),
            "max": float(values.max()),
        }
    return out


def print_table(draws: dict[str, dict[str, float | None]], summary: dict[str, Any]) -> None:
    """One column per draw, then mean ± sd."""

    def fmt(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    names = list(draws)
    print(f"{'figure':20s}" + "".join(f"{n:>10s}" for n in names) + f"{'mean ± sd':>18s}")
    for figure in FIGURES:
        cells = "".join(f"{fmt(draws[n].get(figure)):>10s}" for n in names)
        s = summary.get(figure)
        tail = "-" if s is None else f"{s['mean']:.3f} ± {fmt(s['sd'])}"
        print(f"{figure:20s}{cells}{tail:>18s}")


def train_draw(train: list[Row], seed: int, out: Path, config: TrainConfig) -> Path:
    """One draw's main head and memory (``train_on`` without the outside and injection heads)
    in ``out``, beside copies of the shipped others."""
    shutil.copytree(default_head_dir(), out, dirs_exist_ok=True)
    draw = replace(config, seed=seed, outside_rows=0, injection_hidden=0)
    train_on(train, out, config=draw, cache_dir=CACHE_DIR, progress=False)
    return out


def measure(
    policy_name: str, head_dir: Path, sections: dict[str, list[Row]], flagged: dict[str, list[Row]]
) -> Any:
    """A draw's figures through ``Guard`` with the policy reading ``head_dir``: ``sections``'
    (prefix: rows) and the share of each of ``flagged``'s (figure: benign rows) flagged."""
    guard = Guard(with_classifier_options(load_policy(policy_name), head_dir=str(head_dir)))
    figures: dict[str, float | None] = {}
    for prefix, rows in sections.items():
        run = Run.of(_check(guard, [r.text for r in rows], f"{prefix} ({head_dir.name})"))
        figures |= section_figures(prefix, rows, run)
    for name, rows in flagged.items():
        run = Run.of(_check(guard, [r.text for r in rows], f"{name} ({head_dir.name})"))
        figures[name] = float(run.pred.mean()) if rows else None
    return figures


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Draws of the recipe: the main head retrained per seed, each measured.",
        epilog="What is measured: see the module docstring.",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 10, 20], metavar="SEED")
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="labelled data (default ../shared/data)"
    )
    parser.add_argument(
        "--extra", type=Path, default=None, help="JSONL of rows added to the training data"
    )
    parser.add_argument("--policy", default="default", help="policy to run (default: default)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON file (default {RESULTS})")
    args = parser.parse_args(argv)
    if len(set(args.seeds)) != len(args.seeds):
        parser.error("--seeds: each seed once")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Run the draws."""
    args = parse_args(argv)
    if not args.data.is_dir() or not any(args.data.glob("*.jsonl")):
        fail(f"no data at {args.data} (expected ../shared/data beside the repository)")
    started = time.perf_counter()
    try:
        rows = training_rows(args.data)
        extra = read_rows(args.extra) if args.extra else []
    except (GuardrailError, OSError, ValueError) as e:
        fail(f"cannot read the rows: {e}")
    train, dev = split_rows(dedupe_rows([*rows, *extra]))
    sections = {"s7": read_rows(MULTILINGUAL_REQUESTS), "s13": read_rows(DIRECT_REQUESTS)}
    flagged = {
        "coconot_flagged": [r for r in dev if is_over_refusal(r)],
        "lookalike_flagged": [r for r in dev if is_over_refusal(r, lookalike_only=True)],
    }
    config = TrainConfig()
    draws: dict[str, dict[str, float | None]] = {}
    with tempfile.TemporaryDirectory(prefix="guardrail-draws-") as tmp:
        for seed in args.seeds:
            head_dir = train_draw(train, seed, Path(tmp) / f"seed{seed}", config)
            draws[f"seed {seed}"] = measure(args.policy, head_dir, sections, flagged)
    summary = summarise(draws)
    print_table(draws, summary)
    result = {
        "policy": args.policy,
        "extra": str(args.extra) if args.extra else None,
        "extra_rows": len(extra),
        "train_rows": len(train),
        "ensemble": config.ensemble,
        "draws": draws,
        "summary": summary,
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
