"""HTML pieces shared by the report's sections (``report`` and ``_report_labels``)."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import Any

__all__ = ["table"]


def table(header: list[str], rows: Iterable[list[Any]]) -> str:
    """An HTML table; numbers are right-aligned and floats shown with 3 decimals."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for row in rows:
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
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"
