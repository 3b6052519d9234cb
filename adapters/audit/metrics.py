"""Evaluation against labels in constant memory: binned score histograms and decision counts.

Scores are binned at a resolution of 0.001, so precision/recall curves and thresholds are exact
at every multiple of 0.001 and memory does not grow with the number of rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["BINS", "Counts", "Curve", "ScoreHist", "category_examples"]

BINS = 1000


@dataclass
class Counts:
    """A confusion matrix for a binary decision (unsafe = flagged or blocked)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, *, label: bool, predicted: bool) -> None:
        """Count one labelled row."""
        if label and predicted:
            self.tp += 1
        elif label:
            self.fn += 1
        elif predicted:
            self.fp += 1
        else:
            self.tn += 1

    @property
    def n(self) -> int:
        """Labelled rows counted."""
        return self.tp + self.fp + self.fn + self.tn

    @property
    def precision(self) -> float | None:
        """TP / (TP + FP), None when nothing was predicted unsafe."""
        d = self.tp + self.fp
        return self.tp / d if d else None

    @property
    def recall(self) -> float | None:
        """TP / (TP + FN), None without positives."""
        d = self.tp + self.fn
        return self.tp / d if d else None

    @property
    def fpr(self) -> float | None:
        """FP / (FP + TN), None without negatives."""
        d = self.fp + self.tn
        return self.fp / d if d else None

    @property
    def f1(self) -> float | None:
        """Harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        if p is None or r is None or p + r == 0:
            return None if p is None or r is None else 0.0
        return 2 * p * r / (p + r)

    def as_dict(self) -> dict[str, Any]:
        """Counts and rates, JSON-friendly."""
        return {
            "n": self.n,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "fpr": self.fpr,
        }


@dataclass(frozen=True)
class Curve:
    """Precision, recall and FPR at every threshold ``k / BINS``."""

    thresholds: npt.NDArray[np.float64]
    precision: npt.NDArray[np.float64]
    recall: npt.NDArray[np.float64]
    fpr: npt.NDArray[np.float64]
    f1: npt.NDArray[np.float64]


def _zeros() -> npt.NDArray[np.int64]:
    return np.zeros(BINS + 1, dtype=np.int64)


@dataclass
class ScoreHist:
    """Counts of positive and negative rows per score bin."""

    pos: npt.NDArray[np.int64] = field(default_factory=_zeros)
    neg: npt.NDArray[np.int64] = field(default_factory=_zeros)

    def add(self, score: float, label: bool) -> None:
        """Count one row."""
        # Bin k holds scores in [k/BINS, (k+1)/BINS); a score of exactly 1.0 gets bin BINS.
        k = min(BINS, max(0, int(score * BINS + 1e-9)))
        (self.pos if label else self.neg)[k] += 1

    @property
    def positives(self) -> int:
        """Positive rows counted."""
        return int(self.pos.sum())

    @property
    def negatives(self) -> int:
        """Negative rows counted."""
        return int(self.neg.sum())

    def curve(self) -> Curve:
        """Rates at each threshold t = k / BINS, predicting unsafe when score >= t."""
        tp = np.cumsum(self.pos[::-1])[::-1].astype(np.float64)
        fp = np.cumsum(self.neg[::-1])[::-1].astype(np.float64)
        p_total, n_total = max(self.positives, 1), max(self.negatives, 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(tp + fp > 0, tp / (tp + fp), 1.0)
            recall = tp / p_total
            f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0)
        return Curve(
            thresholds=np.arange(BINS + 1, dtype=np.float64) / BINS,
            precision=precision,
            recall=recall,
            fpr=fp / n_total,
            f1=f1.astype(np.float64),
        )

    def threshold_for_fpr(self, target: float) -> float:
        """The lowest threshold whose false-positive rate is at most ``target``."""
        c = self.curve()
        ok = np.nonzero(c.fpr <= target + 1e-12)[0]
        return float(c.thresholds[ok[0]]) if len(ok) else 1.0

    def threshold_for_recall(self, target: float) -> float:
        """The highest threshold whose recall is at least ``target`` (the fewest false
        positives that still catch that share of the positives)."""
        c = self.curve()
        ok = np.nonzero(c.recall >= target - 1e-12)[0]
        return float(c.thresholds[ok[-1]]) if len(ok) else 0.0

    def threshold_for_f1(self) -> float:
        """The threshold with the highest F1 (the lowest such one on ties)."""
        c = self.curve()
        return float(c.thresholds[int(np.argmax(c.f1))])


def category_examples(r: dict[str, Any], label: bool, categories: list[str]) -> list[str]:
    """The categories a labelled output row counts for, as a positive or a negative.

    A row labelled with a category is a positive of that category alone; an unsafe row
    without one counts for none; a safe row is a negative of every category.
    """
    target = r.get("label_category")
    return [target] if target else [] if label else categories
