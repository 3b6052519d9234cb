"""Accuracy of the ``default`` policy (embedded classifier) on the dev split of ../shared/data.

    python benchmarks/accuracy.py [--data ../shared/data] [--policy default] [--no-lolo]

Deduplicates all sets, splits by id (guardrail._data: 80/20, dev never used in training), and
runs every dev row through ``Guard.from_policy(policy).check_many`` exactly as a user would (no
known language: it is detected). A row counts as flagged unsafe when the action is not
``allow``. Reported per data set, per language and per category: precision, recall, F1,
PR-AUC (of the ``unsafe`` score, or of the category's score), false-positive rate.

- Unsafe-only sets (AdvBench, HarmBench, JailbreakBench, SimpleSafetyTests) are scored mixed
  with an equal number of hard negatives drawn with a fixed seed (mhc, hatecheck and toxigen
  non-hateful rows, cold and kor_hate "none", do_not_answer safe responses).
- Benign-only sets (xquad, self_instruct) report the false-positive rate.
- Cross-lingual transfer: leave one mhc language out (``_accuracy_lolo``).

Prints tables and writes ``benchmarks/results/accuracy.json``. Data sources: see
../shared/data/README.md (mhc, HateCheck, OpenAI moderation, Do-Not-Answer, AdvBench, HarmBench,
JailbreakBench, SimpleSafetyTests, ToxiGen, COLD, Korean hate speech, XQuAD, Self-Instruct).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _accuracy_metrics import (
    UNSAFE_ONLY,
    is_hard_negative,
    is_harmful_request,
    metrics,
    print_table,
    with_hard_negatives,
)

from guardrail import Guard
from guardrail._data import Row, ci_slice, group_by, load_rows, split_rows
from guardrail.classifiers.embedded._labels import CATEGORY_HEADS, targets
from guardrail.types import Action, Role, Verdict

RESULTS = Path(__file__).resolve().parent / "results" / "accuracy.json"
COLUMNS = ("n", "pos", "precision", "recall", "f1", "pr_auc", "fpr")
TARGETS = {
    "harmful_requests_f1": 0.90,
    "mhc_f1": 0.85,
    "xquad_fpr": 0.02,
    "jailbreak_recall": 0.90,
    "lolo_gap_covered": 0.10,
}


def run_guard(guard: Guard, rows: list[Row], batch: int = 256) -> list[Verdict]:
    """Verdicts for rows, in order: prompts as prompts, responses with the prompt they answer."""
    from tqdm import tqdm

    out: list[Verdict | None] = [None] * len(rows)
    for role in (Role.PROMPT, Role.RESPONSE):
        idx = [i for i, r in enumerate(rows) if r.role == role.value]
        for s in tqdm(range(0, len(idx), batch), desc=f"dev {role.value}s", unit="batch"):
            chunk = idx[s : s + batch]
            prompts = [rows[i].prompt for i in chunk] if role is Role.RESPONSE else None
            verdicts = guard.check_many([rows[i].text for i in chunk], role, prompts)
            for i, v in zip(chunk, verdicts, strict=True):
                out[i] = v
    return [v for v in out if v is not None]


def _eval(rows: list[Row], idx: Any, pred: np.ndarray, score: np.ndarray) -> dict[str, Any]:
    idx = np.asarray(idx, dtype=int)
    y = np.array([rows[i].unsafe for i in idx], dtype=bool)
    return metrics(y, pred[idx], score[idx])


def per_source(rows: list[Row], pred: np.ndarray, score: np.ndarray) -> dict[str, Any]:
    """One row of figures per data set (unsafe-only sets mixed with hard negatives)."""
    hard = [i for i, r in enumerate(rows) if is_hard_negative(r)]
    out: dict[str, Any] = {}
    for source, members in group_by(range(len(rows)), lambda i: rows[i].source).items():
        if source in UNSAFE_ONLY:
            out[f"{source} +hardneg"] = _eval(rows, with_hard_negatives(members, hard), pred, score)
        else:
            out[source] = _eval(rows, members, pred, score)
    harmful = [i for i, r in enumerate(rows) if is_harmful_request(r)]
    out["harmful requests +hardneg"] = _eval(rows, with_hard_negatives(harmful, hard), pred, score)
    out["harmful requests +all hardneg"] = _eval(rows, harmful + hard, pred, score)
    attacks = [i for i in group_by(range(len(rows)), lambda i: rows[i].source)["jbb_artifacts"]]
    attacks = [i for i in attacks if "goal" not in rows[i].categories]
    out["jailbreak attacks"] = _eval(rows, attacks, pred, score)
    return out


def per_language(rows: list[Row], pred: np.ndarray, score: np.ndarray) -> dict[str, Any]:
    """Per language over the sets with both labels or benign-only (FPR), not unsafe-only sets."""
    keep = [i for i, r in enumerate(rows) if r.source not in UNSAFE_ONLY]
    return {
        lang: _eval(rows, members, pred, score)
        for lang, members in group_by(keep, lambda i: rows[i].lang).items()
    }


def per_category(rows: list[Row], verdicts: list[Verdict]) -> dict[str, Any]:
    """Per category: 'fired' means that category's threshold fired; known rows only."""
    t = targets(rows)
    out: dict[str, Any] = {}
    for cat in CATEGORY_HEADS:
        j = 1 + CATEGORY_HEADS.index(cat)
        known = np.where(t.mask[:, j] > 0)[0]
        y = t.y[known, j].astype(bool)
        if not y.any():
            continue
        fired = np.array([any(f.category == cat for f in verdicts[i].categories) for i in known])
        score = np.array([verdicts[i].scores.categories.get(cat, 0.0) for i in known])
        m = metrics(y, fired, score)
        flagged = np.array([verdicts[i].action is not Action.ALLOW for i in known])
        m["any_flag_recall"] = float(flagged[y].mean())
        out[cat] = m
    return out


def _ci_figures(rows: list[Row], pred: np.ndarray, score: np.ndarray) -> dict[str, Any]:
    index = {r.id: i for i, r in enumerate(rows)}
    idx = [index[r.id] for r in ci_slice(rows)]
    return {"ids_hash": _ids_hash(rows, idx), **_eval(rows, idx, pred, score)}


def _ids_hash(rows: list[Row], idx: list[int]) -> str:
    import hashlib

    return hashlib.sha256("\n".join(rows[i].id for i in idx).encode()).hexdigest()[:16]


def summary(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets against what was measured."""
    src = results["per_source"]
    lolo = results.get("lolo", {}).get("languages", {})
    gaps = [v["gap"] for v in lolo.values() if v["covered"]]
    measured = {
        "harmful_requests_f1": src["harmful requests +hardneg"]["f1"],
        "mhc_f1": src["mhc"]["f1"],
        "xquad_fpr": src["xquad"]["fpr"],
        "jailbreak_recall": src["jailbreak attacks"]["recall"],
        "lolo_gap_covered": max(gaps) if gaps else None,
    }
    ok = {
        k: None
        if v is None
        else (v <= TARGETS[k] if k in ("xquad_fpr", "lolo_gap_covered") else v >= TARGETS[k])
        for k, v in measured.items()
    }
    return {"targets": TARGETS, "measured": measured, "met": ok}


def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--policy", default="default")
    parser.add_argument("--no-lolo", action="store_true", help="skip leave-one-language-out")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    args = parser.parse_args()

    train, dev = split_rows(load_rows(args.data))
    guard = Guard.from_policy(args.policy)
    started = time.perf_counter()
    verdicts = run_guard(guard, dev)
    seconds = time.perf_counter() - started
    pred = np.array([v.action is not Action.ALLOW for v in verdicts])
    score = np.array([v.scores.unsafe for v in verdicts])
    results: dict[str, Any] = {
        "policy": args.policy,
        "classifier": guard.policy.classifier.name,
        "version": verdicts[0].scores.version if verdicts else None,
        "dev_rows": len(dev),
        "train_rows": len(train),
        "seconds": round(seconds, 1),
        "per_source": per_source(dev, pred, score),
        "per_language": per_language(dev, pred, score),
        "per_category": per_category(dev, verdicts),
        "ci_slice": _ci_figures(dev, pred, score),
    }
    print_table("Per data set (flagged = action != allow)", results["per_source"], COLUMNS)
    print_table("Per language (sets with safe rows)", results["per_language"], COLUMNS)
    print_table(
        "Per category (fired = that category's threshold)",
        results["per_category"],
        (*COLUMNS, "any_flag_recall"),
    )
    if not args.no_lolo:
        from _accuracy_lolo import leave_one_language_out

        base = guard.policy.thresholds.prompt.unsafe
        threshold = base.flag_at if base and base.flag_at is not None else 0.5
        results["lolo"] = leave_one_language_out(train, dev, threshold)
        print_table(
            "Leave one mhc language out (F1 at the base flag threshold)",
            {
                k: {"in_f1": v["in_language"]["f1"], "held_f1": v["held_out"]["f1"], **v}
                for k, v in results["lolo"]["languages"].items()
            },
            ("n", "in_f1", "held_f1", "gap", "covered"),
        )
    results["summary"] = summary(results)
    print("\n## Targets\n" + json.dumps(results["summary"], indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
