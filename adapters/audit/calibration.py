"""Per-language (and per-category) threshold calibration from a labelled audit output.

The output's rows are split by a hash of their id into a calibration part and a held-out part.
Thresholds are chosen on the calibration part, written into a copy of the policy as
``language_overrides`` (and category thresholds), and both policies are then re-evaluated on the
held-out part with the pure engine, from the stored scores: no classifier runs again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from guardrail.errors import ConfigError
from guardrail.policy import Policy

from ._calibration_eval import (
    Evaluation,
    decision_score,
    evaluate_split,
    in_holdout,
    labelled_rows,
)
from .metrics import ScoreHist, category_examples

__all__ = ["CalibrationResult", "calibrate", "in_holdout", "write_policy"]

Objective = Literal["fpr", "recall", "f1"]
_LANG = re.compile(r"^[a-z]{2,3}$")


@dataclass
class _Fit:
    """Score histograms of the calibration part, per role and language, and per category."""

    by_role: dict[str, ScoreHist] = field(default_factory=dict)
    by_language: dict[tuple[str, str], ScoreHist] = field(default_factory=dict)
    by_category: dict[tuple[str, str], ScoreHist] = field(default_factory=dict)

    def add(self, r: dict[str, Any], categories: list[str], policy: Policy) -> None:
        label = bool(r["label"])
        role, lang = r["role"], r.get("language") or "und"
        score = decision_score(r, policy)
        self.by_role.setdefault(role, ScoreHist()).add(score, label)
        self.by_language.setdefault((role, lang), ScoreHist()).add(score, label)
        scores: dict[str, float] = r.get("categories") or {}
        for cat in category_examples(r, label, categories):
            self.by_category.setdefault((role, cat), ScoreHist()).add(scores.get(cat, 0.0), label)


#: Fewer rows of a class than this (in the calibration or the held-out part) and the
#: calibration is too small to trust.
MIN_TRUSTED = 30


@dataclass(frozen=True)
class CalibrationResult:
    """A calibrated policy and what it changes on the held-out part.

    ``problems`` lists why the policy should not be used as it is (a part too small to
    trust, a held-out false-positive rate that rises); ``warnings`` what to look at (a
    language whose held-out FPR rises). ``guardrail calibrate`` refuses to write the policy
    while there are problems, unless forced.
    """

    policy: Policy
    thresholds: dict[str, float]
    before: Evaluation
    after: Evaluation
    calibration_rows: int
    holdout_rows: int
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly summary."""
        return {
            "thresholds": self.thresholds,
            "calibration_rows": self.calibration_rows,
            "holdout_rows": self.holdout_rows,
            "before": self.before.as_dict(),
            "after": self.after.as_dict(),
            "problems": list(self.problems),
            "warnings": list(self.warnings),
        }


def _class_sizes(where: str, positives: int, negatives: int) -> list[str]:
    return [
        f"the {where} part has {n:,} {name} rows, fewer than {MIN_TRUSTED}: too small to trust"
        for name, n in (("unsafe", positives), ("safe", negatives))
        if n < MIN_TRUSTED
    ]


def _review(fit: _Fit, before: Evaluation, after: Evaluation) -> tuple[list[str], list[str]]:
    """Problems (refuse to write) and warnings of a calibration."""
    problems = _class_sizes(
        "calibration",
        sum(h.positives for h in fit.by_role.values()),
        sum(h.negatives for h in fit.by_role.values()),
    )
    o = before.overall
    problems += _class_sizes("held-out", o.tp + o.fn, o.fp + o.tn)
    fpr_before, fpr_after = before.overall.fpr, after.overall.fpr
    if fpr_before is not None and fpr_after is not None and fpr_after > fpr_before + 1e-12:
        problems.append(
            f"the new thresholds raise the held-out false-positive rate from {fpr_before:.3f} "
            f"to {fpr_after:.3f}"
        )
    warnings = []
    for lang, counts in sorted(after.by_language.items()):
        old = before.by_language.get(lang)
        if old is None or old.fpr is None or counts.fpr is None:
            continue
        if counts.fpr > old.fpr + 1e-12:
            size = "" if old.n >= MIN_TRUSTED else f"; only {old.n} held-out rows"
            warnings.append(
                f"language {lang}: held-out FPR rises from {old.fpr:.3f} to {counts.fpr:.3f}{size}"
            )
    return problems, warnings


def _choose(hist: ScoreHist, objective: Objective, target: float) -> float:
    if objective == "f1":
        return hist.threshold_for_f1()
    if objective == "recall":
        return hist.threshold_for_recall(target)
    return hist.threshold_for_fpr(target)


def _usable(hist: ScoreHist, min_rows: int) -> bool:
    # Every objective trades one class against the other: without enough of both (a language
    # with benign rows only, say) a threshold of its own would only be noise.
    return hist.negatives >= min_rows and hist.positives >= min_rows


def calibrate(
    results: Path,
    policy: Policy,
    *,
    objective: Objective = "fpr",
    target_fpr: float = 0.05,
    target_recall: float = 0.9,
    holdout: float = 0.3,
    min_rows: int = 50,
    per_category: bool = True,
    name: str | None = None,
) -> CalibrationResult:
    """Choose thresholds from a labelled audit output and build a calibrated policy.

    Args:
        results: an audit output with a label column.
        policy: the policy the audit ran with (its thresholds are the starting point).
        objective: ``fpr`` (the lowest threshold meeting ``target_fpr``, i.e. the most recall
            within it), ``recall`` (the highest threshold still reaching ``target_recall``,
            i.e. the fewest false positives at that recall) or ``f1`` (the best F1).
        target_fpr: the false-positive rate to meet, for ``objective="fpr"``.
        target_recall: the recall to keep in every language, for ``objective="recall"``.
        holdout: the fraction of rows (by id hash) kept out of calibration to report on.
        min_rows: the fewest labelled rows of a class a language or category needs to get its
            own threshold; languages with fewer use the calibrated role-wide threshold.
        per_category: also calibrate categories that have category labels.
        name: the new policy's name (default: ``<name>-calibrated``).

    Raises:
        ConfigError: no labelled rows, or a bad argument.
    """
    if not 0 < holdout < 1:
        raise ConfigError(f"holdout must be between 0 and 1, got {holdout}")
    if not (0 <= target_fpr <= 1 and 0 <= target_recall <= 1):
        raise ConfigError(f"targets must be between 0 and 1: {target_fpr=}, {target_recall=}")
    target = target_recall if objective == "recall" else target_fpr
    categories = list(policy.resolved_taxonomy.ids)
    fit, n_fit = _fit(results, holdout, categories, policy)
    if n_fit == 0:
        raise ConfigError(
            f"{results}: no labelled, scored rows in the calibration part; audit with "
            "--label-field to record labels"
        )
    thresholds = _choose_all(fit, objective, target, min_rows, per_category)
    new = _apply(policy, thresholds, name or f"{policy.name}-calibrated", objective, target)
    before, after, n_hold = evaluate_split(results, holdout, policy, new)
    problems, warnings = _review(fit, before, after)
    return CalibrationResult(new, thresholds, before, after, n_fit, n_hold, problems, warnings)


def _choose_all(
    fit: _Fit, objective: Objective, target: float, min_rows: int, per_category: bool
) -> dict[str, float]:
    thresholds: dict[str, float] = {}
    for role, hist in fit.by_role.items():
        thresholds[f"{role}"] = _choose(hist, objective, target)
    for (role, lang), hist in fit.by_language.items():
        # Only real language codes can be policy overrides ("und" and odd codes cannot).
        if _LANG.match(lang) and lang != "und" and _usable(hist, min_rows):
            thresholds[f"{role}/{lang}"] = _choose(hist, objective, target)
    if per_category:
        for (role, cat), hist in fit.by_category.items():
            if _usable(hist, min_rows):
                thresholds[f"{role}/category:{cat}"] = _choose(hist, objective, target)
    return thresholds


def _fit(results: Path, holdout: float, categories: list[str], policy: Policy) -> tuple[_Fit, int]:
    fit, n = _Fit(), 0
    for r in labelled_rows(results, holdout, held_out=False):
        fit.add(r, categories, policy)
        n += 1
    return fit, n


def _limits(t: float, block_at: float | None) -> dict[str, float]:
    # The calibrated threshold is where flagging starts; blocking never starts below it.
    return {"flag_at": t, "block_at": max(t, block_at if block_at is not None else t)}


def _apply(
    policy: Policy, thresholds: dict[str, float], name: str, objective: str, target: float
) -> Policy:
    data = policy.model_dump(mode="json", exclude_none=True)
    overrides: dict[str, dict[str, Any]] = {}
    for key, t in sorted(thresholds.items()):
        role, _, rest = key.partition("/")
        base = data["thresholds"].setdefault(role, {})
        shared = "default_category" in base  # categories share the unsafe threshold
        if not rest:
            base["unsafe"] = _limits(t, (base.get("unsafe") or {}).get("block_at"))
            if shared:
                base["default_category"] = _limits(t, base["default_category"].get("block_at"))
        elif rest.startswith("category:"):
            cat = rest.removeprefix("category:")
            cats = base.setdefault("categories", {})
            cats[cat] = _limits(t, (cats.get(cat) or {}).get("block_at"))
        else:
            entry = overrides.setdefault(rest, {"languages": [rest]})
            block = (base.get("unsafe") or {}).get("block_at")
            entry[role] = {"unsafe": _limits(t, block)}
            if shared:
                entry[role]["default_category"] = _limits(t, block)
    goal = {"f1": "best F1", "fpr": f"FPR <= {target}", "recall": f"recall >= {target}"}
    reason = f"calibrated: {goal[objective]}"
    data["language_overrides"] = list(data.get("language_overrides", [])) + [
        {**entry, "reason": reason} for entry in overrides.values()
    ]
    data["name"] = name
    data["description"] = f"{policy.description} ({reason} from labelled data)".strip()
    return Policy.model_validate(data)


def write_policy(policy: Policy, path: Path) -> None:
    """Write a policy as YAML that ``load_policy`` / ``Guard.from_policy`` read back."""
    data = policy.model_dump(mode="json", exclude_none=True)
    text = "# Written by `guardrail calibrate`.\n" + yaml.safe_dump(
        data, sort_keys=False, allow_unicode=True
    )
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
