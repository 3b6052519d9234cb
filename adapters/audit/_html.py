"""HTML pieces shared by the report's sections (``report`` and ``_report_labels``)."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import Any

__all__ = ["SNIPPET_CHARS", "SORT_SCRIPT", "TooSmall", "snippet", "table", "too_small"]

SNIPPET_CHARS = 160

#: The report's only script, inline: a click on a header of a ``sortable`` table sorts its rows
#: by that column (numbers as numbers; a second click reverses). Without it the tables keep the
#: order they were written in.
SORT_SCRIPT = """
document.querySelectorAll('table.sortable').forEach(function (t) {
  t.querySelectorAll('th').forEach(function (th, col) {
    th.title = 'sort by this column'; th.style.cursor = 'pointer';
    th.addEventListener('click', function () {
      var rows = Array.from(t.rows).slice(1), asc = th.dataset.dir !== 'asc';
      var key = function (r) { var c = r.cells[col], v = c.dataset.v !== undefined ?
        c.dataset.v : c.textContent.trim(), n = parseFloat(v.replace(/,/g, ''));
        return isNaN(n) || c.className.indexOf('num') < 0 ? v.toLowerCase() : n; };
      rows.sort(function (a, b) { var x = key(a), y = key(b);
        return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1); });
      t.querySelectorAll('th').forEach(function (h) { delete h.dataset.dir; });
      th.dataset.dir = asc ? 'asc' : 'desc';
      rows.forEach(function (r) { t.tBodies[0].appendChild(r); });
    });
  });
});
"""


class TooSmall(str):
    """A table cell that marks a group too small to trust (rendered greyed out)."""

    __slots__ = ()


def table(header: list[str], rows: Iterable[list[Any]], *, sortable: bool = False) -> str:
    """An HTML table; numbers are right-aligned and floats shown with 3 decimals. Rows whose
    last cell is a ``TooSmall`` note are greyed out; ``sortable`` tables sort on a header
    click (``SORT_SCRIPT``)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        small = bool(row) and isinstance(row[-1], TooSmall)
        cells = []
        for v in row:
            if isinstance(v, float):
                cells.append(f'<td class="num">{v:.3f}</td>')
            elif isinstance(v, int):
                cells.append(f'<td class="num">{v:,}</td>')
            elif v is None:
                cells.append('<td class="num">–</td>')
            else:
                cells.append(f"<td>{escape(str(v))}</td>")
        attrs = ' class="small"' if small else ""
        body.append(f"<tr{attrs}>" + "".join(cells) + "</tr>")
    cls = ' class="sortable"' if sortable else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def too_small(n: int, minimum: int) -> TooSmall | str:
    """The note for a group of ``n`` labelled rows: too small below ``minimum``, else empty."""
    return TooSmall(f"too small to trust (n < {minimum})") if n < minimum else ""


def snippet(text: str) -> str:
    """A text flattened to one line and cut at ``SNIPPET_CHARS``."""
    # Lone surrogates (possible in JSON input) cannot be written as UTF-8: show them escaped.
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    flat = " ".join(text.split())
    return flat if len(flat) <= SNIPPET_CHARS else flat[: SNIPPET_CHARS - 1] + "…"
