"""The audit report: one self-contained HTML file with inline SVG charts and tables.

No scripts, fonts, stylesheets or images are loaded from anywhere: the file works offline and
can be attached to a ticket as it is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from html import escape
from pathlib import Path
from typing import Any

from guardrail.errors import ConfigError
from guardrail.policy import Policy

from . import _svg
from ._html import SORT_SCRIPT, snippet, table, too_small
from ._report_labels import labels_section
from .fields import FieldSpec, prepare
from .readers import Format, iter_records
from .stats import MIN_TRUSTED, AuditStats, collect_stats

__all__ = ["fetch_texts", "render_report", "write_report"]

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1280px;
color:#222;background:#fff;padding:0 16px}
h1{font-size:24px;margin-bottom:4px}h2{font-size:19px;border-bottom:1px solid #ddd;
padding-bottom:4px;margin-top:32px}h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f4f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
.grid{display:flex;flex-wrap:wrap;gap:18px 28px;align-items:flex-start}
.chart text{font-size:11px;fill:#333}.chart .lbl{font-size:12px}.chart .val{fill:#555}
.chart .axis{stroke:#999;stroke-width:1}.muted{color:#777;font-size:13px}
.snippet{max-width:760px;word-break:break-word}.empty{color:#999}
tr.small td{color:#999;font-style:italic}table.sortable th{user-select:none}
table.sortable th:hover{background:#e5e7eb}
"""


def fetch_texts(
    path: Path, fmt: Format, fields: FieldSpec, rows: set[int], *, batch_size: int = 1024
) -> dict[int, str]:
    """The texts of some input rows (for the top-rows tables), read in one streaming pass."""
    found: dict[int, str] = {}
    if not rows:
        return found
    last = max(rows)
    for batch in iter_records(path, fmt, batch_size=batch_size):
        for record in batch:
            if record.row in rows:
                text = prepare(record, fields).text
                if text is not None:
                    found[record.row] = text
        if batch[-1].row >= last:
            break
    return found


def _group_values(
    path: Path, fmt: Format, column: str, *, batch_size: int = 1024
) -> Iterator[tuple[int, str | None]]:
    """``(row, value)`` of one input column for every row, in input order.

    Raises:
        ConfigError: the column is in none of the first batch's readable rows.
    """
    first = True
    for batch in iter_records(path, fmt, batch_size=batch_size):
        if first:
            readable = [r.fields for r in batch if r.error is None]
            if readable and not any(column in f for f in readable):
                seen = sorted({k for f in readable for k in f})
                raise ConfigError(
                    f"--group-by {column!r}: no such column in the first {len(readable)} rows; "
                    f"columns: {', '.join(seen)}"
                )
            first = False
        for record in batch:
            value = record.fields.get(column) if record.error is None else None
            yield record.row, None if value is None or value == "" else str(value)


def write_report(
    path: Path,
    *,
    results: Path,
    categories: list[str],
    meta: dict[str, Any],
    input_path: Path | None = None,
    input_format: Format | None = None,
    fields: FieldSpec | None = None,
    include_text: bool = True,
    policy: Policy | None = None,
    group_by: str | None = None,
) -> AuditStats:
    """Aggregate an audit output and write the HTML report.

    Args:
        path: where to write the HTML file.
        results: the audit output file.
        categories: the policy taxonomy's category ids.
        meta: run metadata shown at the top (policy, classifier, rows/s, ...).
        input_path: the input, to show the text of the top-scoring rows.
        input_format: its format.
        fields: its field spec.
        include_text: show text snippets (False for sensitive data: ids and scores only).
        policy: the policy of the run, whose thresholds are drawn on the histograms.
        group_by: an input column to break the results down by (needs ``input_path``).

    Returns:
        The aggregates the report was drawn from.

    Raises:
        ConfigError: ``group_by`` without the input, or a column the input does not have.
    """
    groups = None
    if group_by is not None:
        if input_path is None or input_format is None:
            raise ConfigError(f"--group-by {group_by!r} needs the audited input to read from")
        groups = _group_values(input_path, input_format, group_by)
    stats = collect_stats(results, categories, group_by=group_by, groups=groups)
    texts: dict[int, str] = {}
    if include_text and input_path is not None and input_format and fields:
        wanted = {row for key in stats.top for _, row, _ in stats.top_rows(key)}
        wanted |= {item.row for item in [*stats.misses, *stats.false_alarms]}
        texts = fetch_texts(input_path, input_format, fields, wanted)
    html = render_report(stats, meta=meta, texts=texts, include_text=include_text, policy=policy)
    tmp = path.with_name(path.name + ".tmp")
    # Texts may hold lone surrogates (from JSON escapes); write them visibly escaped.
    tmp.write_text(html, encoding="utf-8", errors="backslashreplace")
    tmp.replace(path)
    return stats


def render_report(
    stats: AuditStats,
    *,
    meta: dict[str, Any],
    texts: dict[int, str],
    include_text: bool,
    policy: Policy | None = None,
) -> str:
    """The report's HTML."""
    sections = [
        _meta_section(stats, meta),
        _counts_section(stats),
        _rates_section(stats),
        _hist_section(stats, policy),
        _top_section(stats, texts, include_text),
    ]
    if stats.labelled:
        sections.append(labels_section(stats, texts, include_text))
    if stats.group_by is not None:
        sections.append(_group_section(stats))
    if stats.errors:
        sections.append(_errors_section(stats))
    title = f"guardrail audit: {meta.get('input', '')}"
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1>" + "".join(sections) + f"<script>{SORT_SCRIPT}</script>"
        "</body></html>\n"
    )


def _rates_section(stats: AuditStats) -> str:
    """Flag and block rates per language (every scored row, labelled or not)."""
    head = ["language", "rows", "allow rate", "flag rate", "block rate", "note"]
    rows = [
        [
            lang,
            g.rows,
            g.rate("allow"),
            g.rate("flag"),
            g.rate("block"),
            too_small(g.rows, MIN_TRUSTED),
        ]
        for lang, g in sorted(stats.by_language_actions.items(), key=lambda kv: -kv[1].rows)
    ]
    return (
        "<h2>Flag and block rates by language</h2><p class='muted'>Share of each language's "
        f"scored rows per action; languages with fewer than {MIN_TRUSTED} rows are greyed out "
        "as too small to trust. Click a header to sort.</p>" + table(head, rows, sortable=True)
    )


def _group_section(stats: AuditStats) -> str:
    """The breakdown by the --group-by column: rates, and metrics where there are labels."""
    head = ["group", "rows", "flag rate", "block rate", "labelled", "precision", "recall", "F1",
            "FPR", "note"]  # fmt: skip
    rows = []
    for name, g in sorted(stats.groups.items(), key=lambda kv: -kv[1].rows):
        d = g.decision
        n = d.n if stats.labelled else g.rows
        rows.append(
            [
                name,
                g.rows,
                g.rate("flag"),
                g.rate("block"),
                d.n,
                d.precision,
                d.recall,
                d.f1,
                d.fpr,
                too_small(n, MIN_TRUSTED),
            ]
        )
    column = escape(stats.group_by or "")
    return (
        f"<h2>By {column} ({len(rows):,} groups)</h2><p class='muted'>Rows grouped by the "
        f"input column <code>{column}</code>; metrics count labelled rows (flag or block = "
        f"predicted unsafe). Groups with fewer than {MIN_TRUSTED} rows are greyed out as too "
        "small to trust.</p>" + table(head, rows, sortable=True)
    )


def _meta_section(stats: AuditStats, meta: dict[str, Any]) -> str:
    rows = [[k.replace("_", " "), v] for k, v in meta.items()]
    rows.append(["rows in output", stats.rows])
    rows.append(["labelled rows", stats.labelled])
    rows.append(["report generated", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")])
    return "<h2>Run</h2>" + table(["setting", "value"], rows)


def _counts_section(stats: AuditStats) -> str:
    actions = [(a, float(stats.actions[a])) for a in ("allow", "flag", "redact", "block", "error")]
    found = [(t, float(n)) for t, n in stats.entities.most_common(20)]
    entities = (
        f"<div><h3>Personal data and secrets found</h3>"
        f"{_svg.bar_chart(found, title='entities')}</div>"
        if found
        else ""
    )
    cats = [(c, float(n)) for c, n in stats.fired.most_common(20)]
    langs = [(lang, float(n)) for lang, n in stats.languages.most_common(20)]
    by_action = _svg.bar_chart(actions, title="actions", colours=_svg.ACTION_COLOURS)
    return (
        "<h2>Counts</h2><div class='grid'>"
        f"<div><h3>By action</h3>{by_action}</div>"
        f"<div><h3>Categories that fired</h3>{_svg.bar_chart(cats, title='categories')}</div>"
        f"<div><h3>By language ({_shown(len(stats.languages), 20)})</h3>"
        f"{_svg.bar_chart(langs, title='languages')}</div>{entities}</div>"
    )


def _shown(total: int, limit: int) -> str:
    return f"top {limit} of {total}" if total > limit else f"{total}"


def _markers(policy: Policy | None, category: str | None) -> list[tuple[float, str]]:
    """Threshold lines for a histogram: the policy's flag_at / block_at for the unsafe score
    (``category`` None) or a category, per role when the roles differ."""
    if policy is None:
        return []
    found: dict[str, tuple[float | None, float | None]] = {}
    for role in ("prompt", "response"):
        limits = getattr(policy.thresholds, role)
        t = limits.unsafe if category is None else limits.categories.get(category)
        if t is None and category is not None:
            t = limits.default_category
        if t is not None:
            found[role] = (t.flag_at, t.block_at)
    same = len(set(found.values())) == 1
    out: list[tuple[float, str]] = []
    for role, (flag_at, block_at) in found.items():
        prefix = "" if same else f"{role} "
        out += [
            (v, f"{prefix}{name} {v:.2f}")
            for name, v in (("flag", flag_at), ("block", block_at))
            if v is not None
        ]
        if same:
            break
    return out


def _hist_section(stats: AuditStats, policy: Policy | None) -> str:
    order = [k for k in ("unlabelled", "safe", "unsafe") if k in stats.unsafe_hist]
    series: dict[str, list[int]] = {k: [int(n) for n in stats.unsafe_hist[k]] for k in order}
    note = (
        "<p class='muted'>Dashed lines: the policy's flag and block thresholds (language "
        "overrides can move them for some rows).</p>"
        if policy is not None
        else ""
    )
    parts = [
        f"<h2>Score distributions</h2>{note}<div class='grid'>",
        "<div><h3>unsafe score" + (" by label" if stats.labelled else "") + "</h3>",
        _svg.histogram(
            series, title="unsafe score histogram", width=520, markers=_markers(policy, None)
        )
        + "</div>",
    ]
    # Categories whose scores all sit in the lowest bin would only draw one bar: left out.
    mass = {c: int(h[1:].sum()) for c, h in stats.category_hist.items() if h[1:].sum()}
    ranked = sorted(mass, key=lambda c: -mass[c])
    for cat in ranked[:8]:
        parts.append(
            f"<div><h3>{escape(cat)} <span class='muted'>({mass[cat]:,} rows ≥ 0.05)</span></h3>"
            + _svg.histogram(
                {cat: list(stats.category_hist[cat])},
                title=cat,
                width=300,
                markers=_markers(policy, cat),
            )
            + "</div>"
        )
    parts.append("</div>")
    quiet = len(stats.category_hist) - len(ranked)
    if quiet:
        parts.append(f"<p class='muted'>{quiet} categories scored below 0.05 on every row.</p>")
    return "".join(parts)


def _top_section(stats: AuditStats, texts: dict[int, str], include_text: bool) -> str:
    keys = ["unsafe", *sorted(k for k in stats.top if k != "unsafe")]
    parts = ["<h2>Top-scoring rows</h2>"]
    if not include_text:
        parts.append("<p class='muted'>Text omitted (--no-report-text): ids and scores only.</p>")
    for key in keys:
        rows = stats.top_rows(key)
        if not rows:
            continue
        header = ["score", "row", "id", "action", "label", "language"]
        header += ["text"] if include_text else []
        body = []
        for score, row, rid in rows:
            known = stats.listed(row)
            line: list[Any] = [score, row, rid]
            line += [known.action, known.label, known.language] if known else ["", "", ""]
            if include_text:
                line.append(snippet(texts.get(row, "")))
            body.append(line)
        parts.append(f"<h3>{escape(key)}</h3>" + table(header, body, sortable=True))
    return "".join(parts)


def _errors_section(stats: AuditStats) -> str:
    rows = [[k, n] for k, n in stats.errors.most_common(20)]
    return "<h2>Rows that could not be scored</h2>" + table(["error", "rows"], rows)
