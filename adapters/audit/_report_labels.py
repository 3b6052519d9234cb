"""The report's evaluation section: metrics, confusion table and PR curves against labels."""

from __future__ import annotations

from html import escape
from typing import Any

import numpy as np

from . import _svg
from ._html import table
from .metrics import Counts, ScoreHist
from .stats import AuditStats

MAX_CURVES = 8
MIN_ROWS = 5


def labels_section(stats: AuditStats) -> str:
    """Precision / recall / F1 of the policy's decisions, a confusion table and PR curves."""
    head = ["group", "rows", "precision", "recall", "F1", "FPR", "PR-AUC"]
    overall = [_metric_row("all", stats.decision, stats.overall)]
    by_lang = [
        _metric_row(lang, counts, stats.by_language[lang])
        for lang, counts in sorted(stats.decision_by_language.items(), key=lambda kv: -kv[1].n)
    ]
    by_cat = [
        _metric_row(cat, counts, stats.by_category[cat])
        for cat, counts in sorted(stats.decision_by_category.items())
        if counts.tp + counts.fn > 0
    ]
    note = (
        "<p class='muted'>A row counts as predicted unsafe when the policy flags or blocks it. "
        "Per category, rows labelled with the category are positives and rows labelled safe are "
        "negatives; a category counts as predicted when its own threshold fired.</p>"
    )
    return (
        f"<h2>Against labels ({stats.labelled:,} labelled rows)</h2>{note}"
        + "<div class='grid'><div><h3>Overall</h3>"
        + table(head, overall)
        + "<h3>Confusion (label × action)</h3>"
        + _confusion(stats)
        + "</div><div><h3>Precision–recall</h3>"
        + _curves({"all": stats.overall}, "overall PR curve")
        + "</div></div>"
        + "<div class='grid'><div><h3>By language</h3>"
        + table(head, by_lang)
        + "</div><div><h3>PR by language</h3>"
        + _curves(_biggest(stats.by_language), "PR curves by language")
        + "</div></div>"
        + (_category_part(head, by_cat, stats) if by_cat else "")
    )


def _category_part(head: list[str], rows: list[list[Any]], stats: AuditStats) -> str:
    return (
        "<div class='grid'><div><h3>By category</h3>"
        + table(head, rows)
        + "</div><div><h3>PR by category</h3>"
        + _curves(_biggest(stats.by_category, need_positives=True), "PR curves by category")
        + "</div></div>"
    )


def _metric_row(name: str, counts: Counts, hist: ScoreHist) -> list[Any]:
    return [
        name,
        counts.n,
        counts.precision,
        counts.recall,
        counts.f1,
        counts.fpr,
        _pr_auc(hist),
    ]


def _pr_auc(hist: ScoreHist) -> float | None:
    if not hist.positives or not hist.negatives:
        return None
    c = hist.curve()
    # Step-wise area under precision over recall (recall decreases as the threshold rises).
    # From the highest threshold down; recall is 0 above the highest score.
    recall = np.concatenate([[0.0], c.recall[::-1]])
    precision = c.precision[::-1]
    return float(np.sum(np.diff(recall) * precision))


def _biggest(hists: dict[str, ScoreHist], *, need_positives: bool = False) -> dict[str, ScoreHist]:
    usable = {
        k: h
        for k, h in hists.items()
        if h.positives + h.negatives >= MIN_ROWS and (h.positives or not need_positives)
    }
    ranked = sorted(usable, key=lambda k: -(usable[k].positives + usable[k].negatives))
    return {k: usable[k] for k in ranked[:MAX_CURVES]}


def _curves(hists: dict[str, ScoreHist], title: str) -> str:
    series = {}
    for name, hist in hists.items():
        if not hist.positives:
            continue
        c = hist.curve()
        step = 10
        series[name] = (list(c.recall[::step]), list(c.precision[::step]))
    if not series:
        return "<p class='empty'>no positives to draw</p>"
    return _svg.line_chart(series, title=title, x_label="recall", y_label="precision")


def _confusion(stats: AuditStats) -> str:
    actions = ["allow", "flag", "block", "error"]
    head = "".join(f"<th>{a}</th>" for a in actions)
    rows = []
    for label in ("unsafe", "safe"):
        cells = "".join(f'<td class="num">{stats.confusion[(label, a)]:,}</td>' for a in actions)
        rows.append(f"<tr><th>{escape(label)}</th>{cells}</tr>")
    return f"<table><tr><th>label \\ action</th>{head}</tr>{''.join(rows)}</table>"
