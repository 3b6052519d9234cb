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
    drawn: Any = rng.choice(np.asarray(negatives), size=k, replace=False) if k else []
    return np.concatenate([np.asarray(positives, dtype=int), np.asarray(drawn, dtype=int)])


def fmt(value: Any) -> str:
    """A table cell."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def print_table(title: str, rows: dict[str, dict[str, Any]], columns: Sequence[str]) -> None:
    """Print one aligned table (each column as wide as its name, at least 9)."""
    print(f"\n## {title}")
    width = max([len(k) for k in rows] + [10])
    widths = [max(9, len(c)) for c in columns]
    print(f"{'':{width}} " + " ".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True)))
    for name, values in rows.items():
        cells = (f"{fmt(values.get(c)):>{w}}" for c, w in zip(columns, widths, strict=True))
        print(f"{name:{width}} " + " ".join(cells))


# -- groups for the issue-18 targets (benchmarks/accuracy.py, section "targets") -------------

# Plain harmful requests: prompts that ask for something harmful, in English and Chinese.
HARMFUL_REQUEST_SETS = ("advbench", "harmbench", "simplesafetytests", "do_not_answer", "jade_db")
# Benign requests: safe prompts that ask for something (over-refusal look-alikes included).
BENIGN_REQUEST_SETS = ("coconot", "xquad", "self_instruct")


def is_plain_harmful_request(row: Row) -> bool:
    """A harmful request without a jailbreak wrapper: AdvBench / HarmBench / SimpleSafetyTests /
    Do-Not-Answer harmful prompts (not its ordinary questions, see ``unsafe_unknown``), the
    JailbreakBench goals, jade_db questions and JailBench's seed questions (not their templates)."""
    if row.role != "prompt" or not row.unsafe or unsafe_unknown(row):
        return False
    if row.source == "jbb_artifacts":
        return "goal" in row.categories
    if row.source == "jailbench":
        return "jailbench:seed" in row.categories
    if row.source == "harmbench":
        return "\n\n---\n\n" not in row.text  # contextual rows carry a document
    return row.source in HARMFUL_REQUEST_SETS


def is_benign_request(row: Row) -> bool:
    """A safe request prompt: CoCoNot's safe prompts (contrast look-alikes and the benign
    noncompliance ones), XQuAD questions (12 languages), Self-Instruct instructions."""
    return row.role == "prompt" and not row.unsafe and row.source in BENIGN_REQUEST_SETS


def is_over_refusal(row: Row, lookalike_only: bool = False) -> bool:
    """CoCoNot's contrast prompts (``coconot:contrast*``: benign, written to look like requests
    a model should refuse); ``lookalike_only`` keeps the "Requests with safety concerns" ones."""
    if row.source != "coconot" or row.role != "prompt" or row.unsafe:
        return False
    if not any(c.startswith("coconot:contrast") for c in row.categories):
        return False
    return not lookalike_only or "Requests with safety concerns" in row.categories


def bipia_kind(row: Row) -> str | None:
    """``attacked`` / ``clean`` for BIPIA rows (an attack inserted, or the bare context)."""
    if row.source != "bipia":
        return None
    return "attacked" if row.unsafe else "clean"


def side_by_side(
    rows: dict[str, dict[str, Any]], columns: Sequence[str], shared: Sequence[str] = ("n", "pos")
) -> dict[str, dict[str, Any]]:
    """Flatten ``{name: {"old": m, "new": m}}`` into table rows with ``col_old`` / ``col_new``."""
    out: dict[str, dict[str, Any]] = {}
    for name, pair in rows.items():
        new = pair.get("new") or {}
        line = {c: new.get(c) for c in shared}
        for c in columns:
            line[f"{c}_old"] = (pair.get("old") or {}).get(c)
            line[f"{c}_new"] = new.get(c)
        out[name] = line
    return out


def paired_columns(columns: Sequence[str], shared: Sequence[str] = ("n", "pos")) -> list[str]:
    """Column names of a ``side_by_side`` table."""
    return [*shared, *(f"{c}_{s}" for c in columns for s in ("old", "new"))]
