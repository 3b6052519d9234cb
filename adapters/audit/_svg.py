"""Small inline SVG charts (no scripts, no external resources)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

PALETTE = ("#3b6ea5", "#d1495b", "#edae49", "#00798c", "#66a182", "#8d6a9f", "#2e4057", "#c97b40")
ACTION_COLOURS = {
    "allow": "#66a182",
    "flag": "#edae49",
    "redact": "#00798c",
    "block": "#d1495b",
    "error": "#888888",
    "safe": "#66a182",
    "unsafe": "#d1495b",
    "unlabelled": "#3b6ea5",
}


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img">'
        f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )


def bar_chart(
    items: Sequence[tuple[str, float]],
    *,
    title: str,
    colours: dict[str, str] | None = None,
    width: int = 560,
) -> str:
    """Horizontal bars, one per (label, value), with the value printed at the end."""
    if not items:
        return '<p class="empty">nothing to show</p>'
    row_h, label_w = 22, 170
    height = row_h * len(items) + 10
    top = max(v for _, v in items) or 1
    plot_w = width - label_w - 70
    body = []
    for i, (label, value) in enumerate(items):
        y = 5 + i * row_h
        w = max(1.0, plot_w * value / top)
        colour = (colours or {}).get(label, PALETTE[0])
        body.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" class="lbl">'
            f"{escape(label[:26])}</text>"
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" '
            f'fill="{colour}"/>'
            f'<text x="{label_w + w + 5:.1f}" y="{y + 15}" class="val">{value:,.0f}</text>'
        )
    return _svg(width, height, body, title)


def histogram(
    series: Mapping[str, Sequence[int]],
    *,
    title: str,
    width: int = 420,
    height: int = 200,
    markers: Sequence[tuple[float, str]] = (),
) -> str:
    """Vertical bars over [0, 1], one colour per series (side by side within a bin), and a
    dashed vertical line, labelled, at each ``(position, label)`` marker (thresholds)."""
    names = list(series)
    bins = len(next(iter(series.values()))) if series else 0
    if not bins:
        return '<p class="empty">nothing to show</p>'
    left, bottom, top_pad = 44, 30, 22
    plot_w, plot_h = width - left - 10, height - bottom - top_pad
    top = max(max(v) for v in series.values()) or 1
    slot = plot_w / bins
    body = [_axes(left, top_pad, plot_w, plot_h, top)]
    for s, name in enumerate(names):
        colour = ACTION_COLOURS.get(name, PALETTE[s % len(PALETTE)])
        bar_w = slot * 0.9 / len(names)
        for k, count in enumerate(series[name]):
            if not count:
                continue
            h = plot_h * count / top
            x = left + k * slot + slot * 0.05 + s * bar_w
            body.append(
                f'<rect x="{x:.1f}" y="{top_pad + plot_h - h:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{escape(name)} '
                f"{k / bins:.2f}-{(k + 1) / bins:.2f}: {count}</title></rect>"
            )
    for t in (0, 0.25, 0.5, 0.75, 1.0):
        x = left + plot_w * t
        body.append(f'<text x="{x:.1f}" y="{height - 12}" text-anchor="middle">{t:g}</text>')
    for k, (position, label) in enumerate(markers):
        x = left + plot_w * min(1.0, max(0.0, position))
        colour = MARKER_COLOURS.get(label.split()[-2] if " " in label else label, "#444")
        body.append(
            f'<line x1="{x:.1f}" y1="{top_pad - 4}" x2="{x:.1f}" y2="{top_pad + plot_h}" '
            f'stroke="{colour}" stroke-width="1.5" stroke-dasharray="4 3" class="threshold"/>'
            f'<text x="{x - 3:.1f}" y="{top_pad + 10 + 12 * k}" text-anchor="end" '
            f'fill="{colour}">{escape(label)}</text>'
        )
    body.append(_legend(names, left + 4, 14))
    return _svg(width, height, body, title)


# Threshold markers: flag lines amber, block lines red (the action colours, darker).
MARKER_COLOURS = {"flag": "#b7791f", "block": "#9b2c2c"}


def line_chart(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    width: int = 420,
    height: int = 300,
    legend: bool = True,
) -> str:
    """Lines over the unit square: (xs, ys) per named series (e.g. PR curves)."""
    left, bottom, top_pad = 48, 40, 10
    plot_w, plot_h = width - left - (130 if legend else 12), height - bottom - top_pad
    body = [_axes(left, top_pad, plot_w, plot_h, None)]
    names = list(series)
    for s, name in enumerate(names):
        xs, ys = series[name]
        points = " ".join(
            f"{left + plot_w * x:.1f},{top_pad + plot_h * (1 - y):.1f}"
            for x, y in zip(xs, ys, strict=True)
        )
        colour = PALETTE[s % len(PALETTE)]
        body.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
    for t in (0, 0.5, 1.0):
        body.append(
            f'<text x="{left + plot_w * t:.1f}" y="{top_pad + plot_h + 15}" '
            f'text-anchor="middle">{t:g}</text>'
            f'<text x="{left - 6}" y="{top_pad + plot_h * (1 - t) + 4:.1f}" '
            f'text-anchor="end">{t:g}</text>'
        )
    body.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle" '
        f'class="lbl">{escape(x_label)}</text>'
        f'<text x="12" y="{top_pad + plot_h / 2:.1f}" text-anchor="middle" class="lbl" '
        f'transform="rotate(-90 12 {top_pad + plot_h / 2:.1f})">{escape(y_label)}</text>'
    )
    if legend:
        body.append(_legend(names, left + plot_w + 12, top_pad + 8, vertical=True))
    return _svg(width, height, body, title)


def _axes(left: int, top: int, w: float, h: float, y_max: float | None) -> str:
    parts = [
        f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}" class="axis"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + h}" class="axis"/>',
    ]
    if y_max is not None:
        parts.append(f'<text x="{left - 4}" y="{top + 8}" text-anchor="end">{y_max:,.0f}</text>')
        parts.append(f'<text x="{left - 4}" y="{top + h}" text-anchor="end">0</text>')
    return "".join(parts)


def _legend(names: list[str], x: float, y: float, *, vertical: bool = False) -> str:
    if len(names) < 2 and not vertical:
        return ""
    parts = []
    for i, name in enumerate(names):
        colour = ACTION_COLOURS.get(name, PALETTE[i % len(PALETTE)]) if not vertical else None
        colour = colour or PALETTE[i % len(PALETTE)]
        dx, dy = (0, i * 16) if vertical else (i * 100, 0)
        parts.append(
            f'<rect x="{x + dx:.1f}" y="{y + dy - 9:.1f}" width="10" height="10" '
            f'fill="{colour}"/><text x="{x + dx + 14:.1f}" y="{y + dy:.1f}">'
            f"{escape(name[:16])}</text>"
        )
    return "".join(parts)
