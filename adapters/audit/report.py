"""The audit report: one self-contained HTML file with inline SVG charts and tables.

No scripts, fonts, stylesheets or images are loaded from anywhere: the file works offline and
can be attached to a ticket as it is.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from pathlib import Path
from typing import Any

from . import _svg
from ._html import table
from ._report_labels import labels_section
from .fields import FieldSpec, prepare
from .readers import Format, iter_records
from .stats import AuditStats, collect_stats

__all__ = ["fetch_texts", "render_report", "write_report"]

SNIPPET_CHARS = 160
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

    Returns:
        The aggregates the report was drawn from.
    """
    stats = collect_stats(results, categories)
    texts: dict[int, str] = {}
    if include_text and input_path is not None and input_format and fields:
        wanted = {row for key in stats.top for _, row, _ in stats.top_rows(key)}
        texts = fetch_texts(input_path, input_format, fields, wanted)
    html = render_report(stats, meta=meta, texts=texts, include_text=include_text)
    tmp = path.with_name(path.name + ".tmp")
    # Texts may hold lone surrogates (from JSON escapes); write them visibly escaped.
    tmp.write_text(html, encoding="utf-8", errors="backslashreplace")
    tmp.replace(path)
    return stats


def render_report(
    stats: AuditStats, *, meta: dict[str, Any], texts: dict[int, str], include_text: bool
) -> str:
    """The report's HTML."""
    sections = [
        _meta_section(stats, meta),
        _counts_section(stats),
        _hist_section(stats),
        _top_section(stats, texts, include_text),
    ]
    if stats.labelled:
        sections.append(labels_section(stats))
    if stats.errors:
        sections.append(_errors_section(stats))
    title = f"guardrail audit: {meta.get('input', '')}"
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1>" + "".join(sections) + "</body></html>\n"
    )


def _meta_section(stats: AuditStats, meta: dict[str, Any]) -> str:
    rows = [[k.replace("_", " "), v] for k, v in meta.items()]
    rows.append(["rows in output", stats.rows])
    rows.append(["labelled rows", stats.labelled])
    rows.append(["report generated", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")])
    return "<h2>Run</h2>" + table(["setting", "value"], rows)


def _counts_section(stats: AuditStats) -> str:
    actions = [(a, float(stats.actions[a])) for a in ("allow", "flag", "block", "error")]
    cats = [(c, float(n)) for c, n in stats.fired.most_common(20)]
    langs = [(lang, float(n)) for lang, n in stats.languages.most_common(20)]
    by_action = _svg.bar_chart(actions, title="actions", colours=_svg.ACTION_COLOURS)
    return (
        "<h2>Counts</h2><div class='grid'>"
        f"<div><h3>By action</h3>{by_action}</div>"
        f"<div><h3>Categories that fired</h3>{_svg.bar_chart(cats, title='categories')}</div>"
        f"<div><h3>By language ({_shown(len(stats.languages), 20)})</h3>"
        f"{_svg.bar_chart(langs, title='languages')}</div></div>"
    )


def _shown(total: int, limit: int) -> str:
    return f"top {limit} of {total}" if total > limit else f"{total}"


def _hist_section(stats: AuditStats) -> str:
    order = [k for k in ("unlabelled", "safe", "unsafe") if k in stats.unsafe_hist]
    series: dict[str, list[int]] = {k: [int(n) for n in stats.unsafe_hist[k]] for k in order}
    parts = [
        "<h2>Score distributions</h2><div class='grid'>",
        "<div><h3>unsafe score" + (" by label" if stats.labelled else "") + "</h3>",
        _svg.histogram(series, title="unsafe score histogram", width=520) + "</div>",
    ]
    # Categories whose scores all sit in the lowest bin would only draw one bar: left out.
    mass = {c: int(h[1:].sum()) for c, h in stats.category_hist.items() if h[1:].sum()}
    ranked = sorted(mass, key=lambda c: -mass[c])
    for cat in ranked[:8]:
        parts.append(
            f"<div><h3>{escape(cat)} <span class='muted'>({mass[cat]:,} rows ≥ 0.05)</span></h3>"
            + _svg.histogram({cat: list(stats.category_hist[cat])}, title=cat, width=300)
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
        header = ["score", "row", "id"] + (["text"] if include_text else [])
        body = []
        for score, row, rid in rows:
            line: list[Any] = [score, row, rid]
            if include_text:
                line.append(_snippet(texts.get(row, "")))
            body.append(line)
        parts.append(f"<h3>{escape(key)}</h3>" + table(header, body))
    return "".join(parts)


def _snippet(text: str) -> str:
    # Lone surrogates (possible in JSON input) cannot be written as UTF-8: show them escaped.
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    flat = " ".join(text.split())
    return flat if len(flat) <= SNIPPET_CHARS else flat[: SNIPPET_CHARS - 1] + "…"


def _errors_section(stats: AuditStats) -> str:
    rows = [[k, n] for k, n in stats.errors.most_common(20)]
    return "<h2>Rows that could not be scored</h2>" + table(["error", "rows"], rows)
