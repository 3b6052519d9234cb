"""Re-evaluate policies on the held-out part of an audit output, from its stored scores."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from guardrail._data import hash_fraction
from guardrail.engine import evaluate
from guardrail.policy import Policy
from guardrail.types import Action, Role, ScoreSet

from .metrics import Counts, ScoreHist
from .writer import iter_output


@dataclass
class Evaluation:
    """How a policy's decisions (flag or block = unsafe) do on labelled rows."""

    overall: Counts = field(default_factory=Counts)
    by_language: dict[str, Counts] = field(default_factory=dict)
    scores: ScoreHist = field(default_factory=ScoreHist)

    def add(self, language: str, label: bool, predicted: bool, score: float) -> None:
        """Count one row (``score``: its decision score under the base policy)."""
        self.overall.add(label=label, predicted=predicted)
        self.by_language.setdefault(language, Counts()).add(label=label, predicted=predicted)
        self.scores.add(score, label)

    def fpr_at_recall(self, recall: float) -> float | None:
        """The FPR of the best single global threshold (on the decision score) reaching at
        least ``recall``: what one threshold for every language would have cost."""
        if not self.scores.positives or not self.scores.negatives:
            return None
        c = self.scores.curve()
        ok = np.nonzero(c.recall >= recall - 1e-12)[0]
        return float(c.fpr[ok[-1]]) if len(ok) else None

    def as_dict(self) -> dict[str, Any]:
        """Overall and per-language metrics."""
        return {
            "overall": self.overall.as_dict(),
            "by_language": {k: v.as_dict() for k, v in sorted(self.by_language.items())},
        }


def _scores(r: dict[str, Any]) -> ScoreSet:
    cats = {k: min(1.0, max(0.0, float(v))) for k, v in (r.get("categories") or {}).items()}
    return ScoreSet(
        unsafe=min(1.0, max(0.0, float(r["unsafe"]))),
        categories=cats,
        language=r.get("language"),
        language_confidence=r.get("language_confidence"),
    )


def decision_score(r: dict[str, Any], policy: Policy) -> float:
    """The score a single threshold decides on: ``unsafe``, and with a ``default_category``
    threshold in the policy also every category without a threshold of its own."""
    unsafe = float(r["unsafe"])
    limits = policy.thresholds.prompt if r["role"] == "prompt" else policy.thresholds.response
    if limits.default_category is None:
        return unsafe
    scores: dict[str, float] = r.get("categories") or {}
    shared = [v for k, v in scores.items() if k not in limits.categories]
    return max([unsafe, *shared])


def _predicted(policy: Policy, scores: ScoreSet, role: Role) -> bool:
    # Lists need the text, which the output does not keep: only thresholds are compared.
    return evaluate(policy, scores, role=role).action is not Action.ALLOW


def in_holdout(row_id: str, fraction: float) -> bool:
    """Whether a row belongs to the held-out part (stable: a hash of its id)."""
    # Salted, so the split is independent of other id-hash splits (e.g. the data's train/dev).
    return (
        hash_fraction(b"guardrail-calibrate:" + row_id.encode("utf-8", "surrogatepass")) < fraction
    )


def labelled_rows(results: Path, holdout: float, *, held_out: bool) -> Iterator[dict[str, Any]]:
    """The labelled, scored rows of an audit output on one side of the hold-out split."""
    for batch in iter_output(results):
        for r in batch:
            if r.get("label") is None or r.get("unsafe") is None:
                continue
            if in_holdout(str(r["id"]), holdout) is held_out:
                yield r


def evaluate_split(
    results: Path, holdout: float, before: Policy, after: Policy
) -> tuple[Evaluation, Evaluation, int]:
    """Evaluate two policies on the held-out rows (labelled and scored) of an audit output."""
    ev_before, ev_after, n = Evaluation(), Evaluation(), 0
    for r in labelled_rows(results, holdout, held_out=True):
        scores, role = _scores(r), Role(r["role"])
        label, lang = bool(r["label"]), r.get("language") or "und"
        score = decision_score(r, before)
        ev_before.add(lang, label, _predicted(before, scores, role), score)
        ev_after.add(lang, label, _predicted(after, scores, role), score)
        n += 1
    return ev_before, ev_after, n
