"""One streaming pass over an audit output: counts, histograms, top rows and label metrics.

Memory is bounded by the number of categories and languages, never by the number of rows.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .metrics import Counts, ScoreHist, category_examples
from .writer import iter_output

__all__ = ["AuditStats", "collect_stats"]

HIST_BINS = 20
TOP_K = 5


def _hist() -> npt.NDArray[np.int64]:
    return np.zeros(HIST_BINS, dtype=np.int64)


@dataclass
class AuditStats:
    """Aggregates of an audit output."""

    categories: list[str] = field(default_factory=list)
    rows: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    fired: Counter[str] = field(default_factory=Counter)
    languages: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    unsafe_hist: dict[str, npt.NDArray[np.int64]] = field(default_factory=dict)
    category_hist: dict[str, npt.NDArray[np.int64]] = field(default_factory=dict)
    top: dict[str, list[tuple[float, int, str]]] = field(default_factory=dict)
    labelled: int = 0
    overall: ScoreHist = field(default_factory=ScoreHist)
    by_language: dict[str, ScoreHist] = field(default_factory=dict)
    by_category: dict[str, ScoreHist] = field(default_factory=dict)
    decision: Counts = field(default_factory=Counts)
    decision_by_language: dict[str, Counts] = field(default_factory=dict)
    decision_by_category: dict[str, Counts] = field(default_factory=dict)
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, r: dict[str, Any]) -> None:
        """Count one output row."""
        self.rows += 1
        action = r.get("action") or "error"
        self.actions[action] += 1
        if r.get("error"):
            self.errors[str(r["error"]).split(":")[0][:60]] += 1
        language = r.get("language") or "und"
        if r.get("action") is not None:  # unscored rows have no language to count
            self.languages[language] += 1
        self.fired.update(c for c in r.get("fired") or [] if c != "unsafe")
        unsafe = r.get("unsafe")
        if unsafe is None:
            return
        label = r.get("label")
        key = "unlabelled" if label is None else ("unsafe" if label else "safe")
        self.unsafe_hist.setdefault(key, _hist())[_bin(unsafe)] += 1
        self._push("unsafe", unsafe, r)
        for cat, score in (r.get("categories") or {}).items():
            self.category_hist.setdefault(cat, _hist())[_bin(score)] += 1
            if score > 0:
                self._push(cat, score, r)
        if label is not None:
            self._add_labelled(r, bool(label), float(unsafe), language, action)

    def _push(self, key: str, score: float, r: dict[str, Any]) -> None:
        heap = self.top.setdefault(key, [])
        item = (float(score), -int(r["row"]), str(r["id"]))
        if len(heap) < TOP_K:
            heapq.heappush(heap, item)
        elif item > heap[0]:
            heapq.heapreplace(heap, item)

    def _add_labelled(
        self, r: dict[str, Any], label: bool, unsafe: float, language: str, action: str
    ) -> None:
        self.labelled += 1
        predicted = action in ("flag", "block")
        self.overall.add(unsafe, label)
        self.by_language.setdefault(language, ScoreHist()).add(unsafe, label)
        self.decision.add(label=label, predicted=predicted)
        self.decision_by_language.setdefault(language, Counts()).add(
            label=label, predicted=predicted
        )
        self.confusion[("unsafe" if label else "safe", action)] += 1
        cats: dict[str, float] = r.get("categories") or {}
        fired = set(r.get("fired") or [])
        for cat in category_examples(r, label, self.categories):
            score = cats.get(cat, 0.0)
            self.by_category.setdefault(cat, ScoreHist()).add(score, label)
            self.decision_by_category.setdefault(cat, Counts()).add(
                label=label, predicted=cat in fired
            )

    def top_rows(self, key: str) -> list[tuple[float, int, str]]:
        """The top-scoring rows for ``unsafe`` or a category: (score, row, id), best first."""
        return [(s, -neg_row, rid) for s, neg_row, rid in sorted(self.top.get(key, []))[::-1]]


def _bin(score: float) -> int:
    return min(HIST_BINS - 1, max(0, int(score * HIST_BINS)))


def collect_stats(out: Path, categories: list[str]) -> AuditStats:
    """Read an audit output once and aggregate it.

    Args:
        out: the audit output file.
        categories: the taxonomy's category ids (safe rows are negatives for each).
    """
    stats = AuditStats(categories=list(categories))
    for batch in iter_output(out):
        for r in batch:
            stats.add(r)
    return stats
