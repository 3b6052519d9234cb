"""One streaming pass over an audit output: counts, histograms, top rows and label metrics.

Memory is bounded by the number of categories and languages, never by the number of rows.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from guardrail.errors import ConfigError

from .metrics import Counts, ScoreHist, category_examples
from .writer import iter_output

__all__ = ["AuditStats", "GroupStats", "ListedRow", "collect_stats"]

HIST_BINS = 20
TOP_K = 5
#: Misses and false alarms listed in the report (the most confidently wrong ones).
MAX_LISTED = 200
#: Fewer labelled rows than this and a group's metrics are marked as too small to trust.
MIN_TRUSTED = 30


@dataclass(frozen=True, order=True)
class ListedRow:
    """A row shown in a table of the report (top-scoring rows, misses, false alarms)."""

    score: float
    row: int
    id: str
    action: str
    label: str  # "unsafe", "safe", a category id, or "" (unlabelled)
    language: str
    categories: str  # the categories that fired, comma-separated


@dataclass
class GroupStats:
    """Counts of one group of rows (a language, or a value of the --group-by column)."""

    rows: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    decision: Counts = field(default_factory=Counts)

    def rate(self, action: str) -> float | None:
        """The share of scored rows with this action (None without scored rows)."""
        scored = sum(n for a, n in self.actions.items() if a != "error")
        return self.actions[action] / scored if scored else None


def _hist() -> npt.NDArray[np.int64]:
    return np.zeros(HIST_BINS, dtype=np.int64)


@dataclass
class AuditStats:
    """Aggregates of an audit output."""

    categories: list[str] = field(default_factory=list)
    rows: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    fired: Counter[str] = field(default_factory=Counter)
    entities: Counter[str] = field(default_factory=Counter)  # by type, summed over rows
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
    by_language_actions: dict[str, GroupStats] = field(default_factory=dict)
    group_by: str | None = None
    groups: dict[str, GroupStats] = field(default_factory=dict)
    # Heaps of the most confidently wrong rows: misses by lowest score, false alarms by highest.
    _misses: list[tuple[float, int, ListedRow]] = field(default_factory=list)
    _false_alarms: list[tuple[float, int, ListedRow]] = field(default_factory=list)
    misses_total: int = 0
    false_alarms_total: int = 0
    # Action, label and language of the rows in the top heaps (pruned to those rows).
    _listed: dict[int, ListedRow] = field(default_factory=dict)

    def add(self, r: dict[str, Any], group: str | None = None) -> None:
        """Count one output row (``group``: its value of the --group-by column)."""
        self.rows += 1
        action = r.get("action") or "error"
        self.actions[action] += 1
        if r.get("error"):
            self.errors[str(r["error"]).split(":")[0][:60]] += 1
        language = r.get("language") or "und"
        label = r.get("label")
        predicted = action in ("flag", "block")
        if self.group_by is not None:
            g = self.groups.setdefault(group if group is not None else "(none)", GroupStats())
            g.rows += 1
            g.actions[action] += 1
            if label is not None and r.get("unsafe") is not None:
                g.decision.add(label=bool(label), predicted=predicted)
        if r.get("action") is not None:  # unscored rows have no language to count
            self.languages[language] += 1
            lang = self.by_language_actions.setdefault(language, GroupStats())
            lang.rows += 1
            lang.actions[action] += 1
        self.fired.update(c for c in r.get("fired") or [] if c != "unsafe")
        for entity_type, count in dict(r.get("entities") or {}).items():
            self.entities[entity_type] += int(count)
        unsafe = r.get("unsafe")
        if unsafe is None:
            return
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
        self._listed[int(r["row"])] = _listed(r, float(r["unsafe"]))
        if len(self._listed) > 4 * TOP_K * (len(self.categories) + 2):
            self._prune_listed()

    def _prune_listed(self) -> None:
        keep = {-neg for heap in self.top.values() for _, neg, _ in heap}
        self._listed = {row: v for row, v in self._listed.items() if row in keep}

    def _list_wrong(self, r: dict[str, Any], label: bool, unsafe: float, action: str) -> None:
        predicted = action in ("flag", "block")
        if label == predicted:
            return
        row = int(r["row"])
        if label:  # a miss: the lower its score, the more confidently it was allowed
            self.misses_total += 1
            heap, rank = self._misses, -unsafe
        else:  # a false alarm: the higher its score, the more confidently it was flagged
            self.false_alarms_total += 1
            heap, rank = self._false_alarms, unsafe
        item = (rank, -row, _listed(r, unsafe))
        if len(heap) < MAX_LISTED:
            heapq.heappush(heap, item)
        elif item[:2] > heap[0][:2]:
            heapq.heapreplace(heap, item)

    @property
    def misses(self) -> list[ListedRow]:
        """Unsafe rows the policy allowed (the lowest-scoring first), at most ``MAX_LISTED``."""
        return [item for _, _, item in sorted(self._misses, key=lambda t: t[:2], reverse=True)]

    @property
    def false_alarms(self) -> list[ListedRow]:
        """Safe rows the policy flagged or blocked (the highest-scoring first)."""
        return [
            item for _, _, item in sorted(self._false_alarms, key=lambda t: t[:2], reverse=True)
        ]

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
        self._list_wrong(r, label, unsafe, action)
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

    def listed(self, row: int) -> ListedRow | None:
        """Action, label and language of a top-scoring row."""
        return self._listed.get(row)


def _listed(r: dict[str, Any], score: float) -> ListedRow:
    label = r.get("label")
    shown = "" if label is None else (r.get("label_category") or ("unsafe" if label else "safe"))
    fired = [c for c in r.get("fired") or [] if c != "unsafe"]
    return ListedRow(
        score=score,
        row=int(r["row"]),
        id=str(r["id"]),
        action=str(r.get("action") or "error"),
        label=str(shown),
        language=str(r.get("language") or "und"),
        categories=", ".join(fired),
    )


def _bin(score: float) -> int:
    return min(HIST_BINS - 1, max(0, int(score * HIST_BINS)))


def collect_stats(
    out: Path,
    categories: list[str],
    *,
    group_by: str | None = None,
    groups: Iterator[tuple[int, str | None]] | None = None,
) -> AuditStats:
    """Read an audit output once and aggregate it.

    Args:
        out: the audit output file.
        categories: the taxonomy's category ids (safe rows are negatives for each).
        group_by: the name of the input column rows are grouped by, if any.
        groups: ``(row, value)`` of that column for every input row, in input order (read
            alongside the output, so memory stays flat).

    Raises:
        ConfigError: the groups do not line up with the output's rows (another input).
    """
    stats = AuditStats(categories=list(categories), group_by=group_by)
    for batch in iter_output(out):
        for r in batch:
            group = None
            if groups is not None:
                row, group = next(groups, (None, None))
                if row != r["row"]:
                    raise ConfigError(
                        f"--group-by {group_by}: the input's row {row} does not line up with "
                        f"the output's row {r['row']}; report on the input that was audited"
                    )
            stats.add(r, group)
    return stats
