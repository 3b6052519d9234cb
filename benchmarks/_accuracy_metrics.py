"""Metrics and evaluation groups for ``benchmarks/accuracy.py``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from guardrail._data import Row
from guardrail.classifiers.embedded._labels import unsafe_unknown

# Sets whose rows are all unsafe, by design: scored mixed with hard negatives.
UNSAFE_ONLY = ("advbench", "harmbench", "jbb_artifacts", "simplesafetytests")
# Sets whose rows are all safe: only the false-positive rate means anything.
BENIGN_ONLY = ("xquad", "self_instruct")
HARD_NEGATIVE_SETS = ("mhc", "hatecheck", "toxigen_demos", "cold", "kor_hate", "do_not_answer")


def metrics(y: np.ndarray, pred: np.ndarray, score: np.ndarray) -> dict[str, Any]:
    """Precision, recall, F1, PR-AUC (average precision), false-positive rate and counts."""
    y, pred = y.astype(bool), pred.astype(bool)
    tp, fp = int((y & pred).sum()), int((~y & pred).sum())
    fn, tn = int((y & ~pred).sum()), int((~y & ~pred).sum())
    out: dict[str, Any] = {"n": len(y), "pos": int(y.sum()), "neg": int((~y).sum())}
    out["precision"] = tp / (tp + fp) if tp + fp else None
    out["recall"] = tp / (tp + fn) if tp + fn else None
    out["f1"] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    out["fpr"] = fp / (fp + tn) if fp + tn else None
    out["pr_auc"] = average_precision(y, score) if 0 < y.sum() < len(y) else None
    return out


def average_precision(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the precision-recall curve (average precision, ties broken by order)."""
    order = np.argsort(-score, kind="stable")
    hits = y[order].astype(float)
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / hits.sum())


def is_hard_negative(row: Row) -> bool:
    """A safe row from a set whose safe rows are deliberately close to unsafe ones."""
    return (
        not row.unsafe
        and row.source in HARD_NEGATIVE_SETS
        and (row.source != "do_not_answer" or row.role == "response")
    )


def is_harmful_request(row: Row) -> bool:
    """A plain harmful request (a prompt, not a jailbreak attack; not one of Do-Not-Answer's
    ordinary questions about the chatbot, medicine or companies, see ``unsafe_unknown``)."""
    if row.role != "prompt" or not row.unsafe or unsafe_unknown(row):
        return False
    if row.source == "jbb_artifacts":
        return "goal" in row.categories
    return row.source in {"advbench", "harmbench", "simplesafetytests", "do_not_answer"}


def with_hard_negatives(
    positives: Sequence[int], negatives: Sequence[int], seed: int = 0
) -> np.ndarray:
    """Indices of ``positives`` plus as many hard negatives, drawn with a fixed seed.

    An equal mix makes "always unsafe" score F1 = 0.67, so only a real classifier scores well.
    """
    rng = np.random.default_rng(seed)
    k = min(len(positives), len(negatives))
    drawn = rng.choice(np.asarray(negatives), size=k, replace=False) if k else []
    return np.concatenate([np.asarray(positives, dtype=int), np.asarray(drawn, dtype=int)])


def fmt(value: Any) -> str:
    """A table cell."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def print_table(title: str, rows: dict[str, dict[str, Any]], columns: Sequence[str]) -> None:
    """Print one aligned table."""
    print(f"\n## {title}")
    width = max([len(k) for k in rows] + [10])
    print(f"{'':{width}} " + " ".join(f"{c:>9}" for c in columns))
    for name, values in rows.items():
        print(f"{name:{width}} " + " ".join(f"{fmt(values.get(c)):>9}" for c in columns))
