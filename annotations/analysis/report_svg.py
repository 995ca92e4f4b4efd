"""Dot-and-whisker charts as inline SVG for the self-contained HTML report (report_exports.py).

The dashboard draws its charts with plotly.js in the browser; a file meant to be archived, mailed and
printed cannot run it, and plotly's static export (kaleido) needs a browser. A rate with its interval
per group and model is a dot and a line, so this small renderer draws them itself rather than add
matplotlib (and its compiled dependencies) for three charts: the SVG is plain text, every label passes
through `django.utils.html.escape` (group, model and scope names are user-provided), and it keeps the
dashboard's Okabe-Ito colours (figures.PALETTE). An undefined value has no dot; its reason is written
in the row, never a 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.html import escape

from annotations.analysis.figures import PALETTE

WIDTH = 760
LABEL_CHARS = 34  # longer row labels are cut, the full text stays in the tooltip
CHAR_WIDTH = 6.6  # px per character at font-size 12, for the label column's width
SERIES_HEIGHT = 16
ROW_GAP = 12
TOP, BOTTOM, RIGHT = 58, 44, 24


@dataclass(frozen=True)
class Row:
    """One row of the chart: a label and one cell per series (None when the series has no such row)."""

    label: str
    cells: tuple[dict | None, ...]


def _value_text(value: float, *, percent: bool) -> str:
    return f"{value:.1%}" if percent else f"{value:.3f}"


def _cell_text(cell: dict, *, percent: bool) -> str:
    if cell["value"] is None:
        return f"undefined ({cell['reason']})"
    text = _value_text(cell["value"], percent=percent)
    if cell["ci_low"] is not None and cell["ci_high"] is not None:
        bounds = (_value_text(cell[k], percent=percent) for k in ("ci_low", "ci_high"))
        text += " [{}, {}]".format(*bounds)
    return f"{text}, n = {cell['n']}"


def _short(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "\u2026"


def _ticks(low: float, high: float) -> list[float]:
    step = 0.25 if high - low <= 1 else 0.5
    first = step * round(low / step)
    ticks, tick = [], first
    while tick <= high + 1e-9:
        if tick >= low - 1e-9:
            ticks.append(round(tick, 6))
        tick += step
    return ticks


def dot_whisker_svg(
    *,
    key: str,
    title: str,
    series: list[str],
    rows: list[Row],
    axis_label: str,
    percent: bool = True,
    domain: tuple[float, float] = (0.0, 1.0),
) -> str:
    """An SVG chart: per row one dot and 95% interval line per series, a legend, a labelled x axis.

    Values outside `domain` are clipped to its edge (the tooltip keeps the exact value); `key` makes
    the element ids unique within the page.
    """
    low, high = domain
    label_width = min(
        max(80.0, 14 + CHAR_WIDTH * max((len(_short(r.label)) for r in rows), default=0)), 250.0
    )
    left = label_width + 8
    plot_width = WIDTH - left - RIGHT
    band = SERIES_HEIGHT * max(len(series), 1) + ROW_GAP
    height = TOP + band * max(len(rows), 1) + BOTTOM

    def x(value: float) -> float:
        value = min(max(value, low), high)
        return round(left + plot_width * (value - low) / (high - low), 2)

    title_id = f"svg-{escape(key)}-title"
    out = [
        (
            f'<svg class="figure" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
            f'role="img" aria-labelledby="{title_id}" font-family="system-ui, sans-serif" font-size="12">'
        ),
        f'<title id="{title_id}">{escape(title)}</title>',
        f'<text x="{left}" y="18" font-size="14" font-weight="600">{escape(title)}</text>',
    ]
    legend_x = left
    for s, name in enumerate(series):
        colour = PALETTE[s % len(PALETTE)]
        out.append(f'<circle cx="{legend_x + 5}" cy="36" r="5" fill="{colour}"/>')
        out.append(f'<text x="{legend_x + 14}" y="40">{escape(_short(name))}</text>')
        legend_x += 28 + CHAR_WIDTH * len(_short(name))
    bottom = TOP + band * max(len(rows), 1)
    for tick in _ticks(low, high):
        out.append(f'<line x1="{x(tick)}" y1="{TOP - 6}" x2="{x(tick)}" y2="{bottom}" stroke="#e2e2e2"/>')
        out.append(
            f'<text x="{x(tick)}" y="{bottom + 16}" text-anchor="middle">'
            f"{escape(f'{tick:.0%}' if percent else f'{tick:.2f}')}</text>"
        )
    if low < 0 < high:
        out.append(f'<line x1="{x(0)}" y1="{TOP - 6}" x2="{x(0)}" y2="{bottom}" stroke="#999999"/>')
    out.append(f'<line x1="{left}" y1="{bottom}" x2="{left + plot_width}" y2="{bottom}" stroke="#555555"/>')
    out.append(
        f'<text x="{left + plot_width / 2}" y="{bottom + 36}" text-anchor="middle">'
        f"{escape(axis_label)}</text>"
    )
    for r, row in enumerate(rows):
        top = TOP + band * r
        out.append(
            f'<text x="{label_width}" y="{top + band / 2}" text-anchor="end" dominant-baseline="middle">'
            f"<title>{escape(row.label)}</title>{escape(_short(row.label))}</text>"
        )
        for s, cell in enumerate(row.cells):
            if cell is None:
                continue
            y = top + ROW_GAP / 2 + SERIES_HEIGHT * s + SERIES_HEIGHT / 2
            colour = PALETTE[s % len(PALETTE)]
            tip = (
                f"<title>{escape(f'{series[s]} · {row.label}: {_cell_text(cell, percent=percent)}')}</title>"
            )
            if cell["value"] is None:
                out.append(
                    f'<text x="{left + 4}" y="{y}" dominant-baseline="middle" fill="#7a4a00" '
                    f'font-style="italic">{tip}{escape(_short(series[s]))}: '
                    f"{escape(_cell_text(cell, percent=percent))}</text>"
                )
                continue
            out.append(f"<g>{tip}")
            if cell["ci_low"] is not None and cell["ci_high"] is not None:
                a, b = x(cell["ci_low"]), x(cell["ci_high"])
                out.append(f'<line x1="{a}" y1="{y}" x2="{b}" y2="{y}" stroke="{colour}" stroke-width="2"/>')
                for end in (a, b):
                    out.append(
                        f'<line x1="{end}" y1="{y - 4}" x2="{end}" y2="{y + 4}" '
                        f'stroke="{colour}" stroke-width="2"/>'
                    )
            out.append(f'<circle cx="{x(cell["value"])}" cy="{y}" r="4.5" fill="{colour}"/></g>')
    out.append("</svg>")
    return "\n".join(out)
