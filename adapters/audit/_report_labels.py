"""The report's evaluation section: metrics, confusion table and PR curves against labels."""

from __future__ import annotations

from html import escape
from typing import Any

import numpy as np

from . import _svg
from ._html import snippet, table, too_small
from .metrics import Counts, ScoreHist
from .stats import MIN_TRUSTED, AuditStats, ListedRow

MAX_CURVES = 8
MIN_ROWS = 5


def labels_section(stats: AuditStats, texts: dict[int, str], include_text: bool) -> str:
    """Precision / recall / F1 of the policy's decisions, a confusion table, PR curves (one
    small chart per language, every language), and the lists of misses and false alarms."""
    head = ["group", "rows", "precision", "recall", "F1", "FPR", "PR-AUC", "note"]
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
        "negatives; a category counts as predicted when its own threshold fired. Groups with "
        f"fewer than {MIN_TRUSTED} labelled rows are greyed out: their rates are too small to "
        "trust. Click a header to sort a table.</p>"
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
        + "<h3>By language</h3>"
        + table(head, by_lang, sortable=True)
        + f"<h3>PR by language ({len(stats.by_language)} languages)</h3>"
        + _small_multiples(stats.by_language)
        + (_category_part(head, by_cat, stats) if by_cat else "")
        + _wrong_part(stats, texts, include_text)
    )


def _category_part(head: list[str], rows: list[list[Any]], stats: AuditStats) -> str:
    return (
        "<div class='grid'><div><h3>By category</h3>"
        + table(head, rows, sortable=True)
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
        too_small(counts.n, MIN_TRUSTED),
    ]


def _small_multiples(hists: dict[str, ScoreHist]) -> str:
    """One small PR chart per group, every group, largest first; too-small ones say so."""
    charts = []
    for name in sorted(hists, key=lambda k: -(hists[k].positives + hists[k].negatives)):
        hist = hists[name]
        n = hist.positives + hist.negatives
        small = " · too small to trust" if n < MIN_TRUSTED else ""
        title = (
            f"{escape(name)} <span class='muted'>(n={n:,}, {hist.positives:,} unsafe{small})</span>"
        )
        if not hist.positives or not hist.negatives:
            missing = "unsafe" if not hist.positives else "safe"
            chart = f"<p class='empty'>no {missing} rows: no curve</p>"
        else:
            c = hist.curve()
            chart = _svg.line_chart(
                {name: (list(c.recall[::10]), list(c.precision[::10]))},
                title=f"PR curve {name}",
                x_label="recall",
                y_label="precision",
                width=210,
                height=170,
                legend=False,
            )
        charts.append(f"<div><h3>{title}</h3>{chart}</div>")
    return "<div class='grid'>" + "".join(charts) + "</div>"


def _wrong_part(stats: AuditStats, texts: dict[int, str], include_text: bool) -> str:
    """The misses (unsafe rows allowed) and false alarms (safe rows flagged or blocked)."""
    parts = []
    for title, rows, total, order in (
        ("Misses: unsafe rows the policy allowed", stats.misses, stats.misses_total,
         "lowest score first"),
        ("False alarms: safe rows the policy flagged or blocked", stats.false_alarms,
         stats.false_alarms_total, "highest score first"),
    ):  # fmt: skip
        shown = f"{len(rows):,} of {total:,}, {order}" if total > len(rows) else f"{total:,}"
        parts.append(f"<h3>{escape(title)} ({shown})</h3>")
        parts.append(
            _listed_table(rows, texts, include_text) if rows else "<p class='empty'>none</p>"
        )
    return "".join(parts)


def _listed_table(rows: list[ListedRow], texts: dict[int, str], include_text: bool) -> str:
    head = ["score", "action", "label", "categories fired", "language", "row", "id"]
    head += ["text"] if include_text else []
    body: list[list[Any]] = []
    for r in rows:
        line: list[Any] = [r.score, r.action, r.label, r.categories, r.language, r.row, r.id]
        if include_text:
            line.append(snippet(texts.get(r.row, "")))
        body.append(line)
    return table(head, body, sortable=True)


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
    actions = ["allow", "flag", "redact", "block", "error"]
    head = "".join(f"<th>{a}</th>" for a in actions)
    rows = []
    for label in ("unsafe", "safe"):
        cells = "".join(f'<td class="num">{stats.confusion[(label, a)]:,}</td>' for a in actions)
        rows.append(f"<tr><th>{escape(label)}</th>{cells}</tr>")
    return f"<table><tr><th>label \\ action</th>{head}</tr>{''.join(rows)}</table>"
