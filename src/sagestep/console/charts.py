"""Inline SVG charts rendered on the server (no chart library, no JavaScript). Every chart is paired with a table of
the same numbers by the templates; the SVG carries a title and a description for screen readers."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence

from markupsafe import Markup, escape

_ids = itertools.count(1)


@dataclasses.dataclass
class Series:
    name: str
    y: Sequence[float | None]
    x: Sequence[float] | None = None  # numeric x; None = the chart's categories, in order
    style: str = "s1"  # CSS class: s1..s6 colours, "boundary", "planned"
    dashed: bool = False
    points: bool = True
    legend: bool = True


@dataclasses.dataclass
class Line:
    """A horizontal reference: a threshold (crossings above it are marked) or a label-only guide."""

    y: float
    label: str
    style: str = "threshold"
    marks_above: bool = True


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if not math.isfinite(lo) or not math.isfinite(hi):
        return []
    if hi - lo < 1e-12:
        hi, lo = hi + (abs(hi) or 1) * 0.5, lo - (abs(lo) or 1) * 0.5
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    value = start
    while value <= hi + step * 0.5 and len(ticks) < 12:
        ticks.append(round(value, 12))
        value += step
    return ticks


def fmt(value: float | None, digits: int = 4) -> str:
    """A number for people: thousands separated, `digits` significant digits below 1000, no float noise."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "–"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e7:
        return f"{value:.3g}"
    if magnitude >= 1000 or float(value).is_integer():
        return f"{value:,.0f}"
    if magnitude < 10 ** -(digits - 1):
        return f"{value:.2g}"
    return f"{value:.{digits}g}"


def chart(
    series: Sequence[Series],
    *,
    title: str,
    categories: Sequence[str] | None = None,
    x_label: str = "",
    y_label: str = "",
    band: tuple[float, float] | None = None,
    band_label: str = "baseline",
    lines: Sequence[Line] = (),
    width: int = 640,
    height: int = 220,
    y_range: tuple[float | None, float | None] = (None, None),
) -> Markup:
    """A line chart. With `categories`, x is the category index (periods, looks); otherwise each series has x."""
    chart_id = f"chart{next(_ids)}"
    left, right, top, bottom = 60, 12, 40, 34
    legend_items = [s for s in series if s.legend] if len(series) > 1 or band or lines else []
    legend_rows: list[list[tuple[Series, float]]] = [[]]
    x_cursor = float(left)
    for item in legend_items:
        item_width = 26 + 6.2 * len(item.name)
        if legend_rows[-1] and x_cursor + item_width > width - right:
            legend_rows.append([])
            x_cursor = float(left)
        legend_rows[-1].append((item, x_cursor))
        x_cursor += item_width
    top += 14 * (len(legend_rows) - 1)
    height += 14 * (len(legend_rows) - 1)
    plot_w, plot_h = width - left - right, height - top - bottom
    xs: list[float] = []
    ys: list[float] = []
    for s in series:
        xvals = list(s.x) if s.x is not None else list(range(len(s.y)))
        xs += xvals
        ys += [v for v in s.y if v is not None and math.isfinite(v)]
    if band:
        ys += [band[0], band[1]]
    ys += [line.y for line in lines if math.isfinite(line.y)]
    if categories is not None:
        x_lo, x_hi = -0.5, max(len(categories) - 0.5, 0.5)
    else:
        x_lo, x_hi = (min(xs), max(xs)) if xs else (0.0, 1.0)
        if x_hi - x_lo < 1e-12:
            x_lo, x_hi = x_lo - 0.5, x_hi + 0.5
        pad = (x_hi - x_lo) * 0.03
        x_lo, x_hi = x_lo - pad, x_hi + pad
    y_lo = y_range[0] if y_range[0] is not None else (min(ys) if ys else 0.0)
    y_hi = y_range[1] if y_range[1] is not None else (max(ys) if ys else 1.0)
    if y_hi - y_lo < 1e-12:
        y_hi = y_lo + (abs(y_lo) or 1.0)
    ticks = _nice_ticks(y_lo, y_hi)
    if ticks:
        y_lo, y_hi = min(y_lo, ticks[0]), max(y_hi, ticks[-1])
    if y_range[0] is not None:
        y_lo = y_range[0]
        ticks = [t for t in ticks if t >= y_lo - 1e-12]

    def px(x: float) -> float:
        return left + (x - x_lo) / (x_hi - x_lo) * plot_w

    def py(y: float) -> float:
        return top + (1 - (y - y_lo) / (y_hi - y_lo)) * plot_h

    parts = [
        f'<svg class="chart" id="{chart_id}" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-labelledby="{chart_id}-t {chart_id}-d" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-t">{escape(title)}</title>',
        f'<desc id="{chart_id}-d">{escape(_describe(series, categories, band, band_label, lines))}</desc>',
    ]
    for tick in ticks:
        if y_lo - 1e-12 <= tick <= y_hi + 1e-12:
            y = py(tick)
            parts.append(f'<line class="grid" x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>')
            parts.append(f'<text class="tick" x="{left - 6}" y="{y + 3:.1f}" text-anchor="end">{escape(fmt(tick, 3))}</text>')
    if band:
        y0, y1 = py(max(band)), py(min(band))
        parts.append(f'<rect class="band" x="{left}" y="{y0:.1f}" width="{plot_w}" height="{max(y1 - y0, 1.5):.1f}">'
                     f'<title>{escape(band_label)}: {escape(fmt(band[0]))} – {escape(fmt(band[1]))}</title></rect>')
        parts.append(f'<text class="band-label" x="{left + plot_w - 4}" y="{y0 - 3:.1f}" text-anchor="end">{escape(band_label)}</text>')
    for line in lines:
        if not math.isfinite(line.y):
            continue
        y = py(line.y)
        parts.append(f'<line class="{line.style}" x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>')
        if line.label:
            parts.append(f'<text class="{line.style}-label" x="{left + 4}" y="{y - 4:.1f}">{escape(line.label)} {escape(fmt(line.y))}</text>')
    if categories is not None:
        step = max(1, math.ceil(len(categories) / 10))
        for index, label in enumerate(categories):
            if index % step == 0 or index == len(categories) - 1:
                x = px(index)
                parts.append(f'<text class="tick" x="{x:.1f}" y="{top + plot_h + 14}" text-anchor="middle">{escape(label)}</text>')
    else:
        for tick in _nice_ticks(x_lo, x_hi):
            if x_lo - 1e-12 <= tick <= x_hi + 1e-12:
                parts.append(f'<text class="tick" x="{px(tick):.1f}" y="{top + plot_h + 14}" text-anchor="middle">{escape(fmt(tick, 3))}</text>')
    parts.append(f'<line class="axis" x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}"/>')
    parts.append(f'<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}"/>')
    if x_label:
        parts.append(f'<text class="axis-label" x="{left + plot_w / 2:.1f}" y="{height - 4}" text-anchor="middle">{escape(x_label)}</text>')
    parts.append(f'<text class="chart-title" x="4" y="14">{escape(title)}</text>')
    if y_label:
        parts.append(f'<text class="axis-label" transform="translate(12 {top + plot_h / 2:.1f}) rotate(-90)" text-anchor="middle">{escape(y_label)}</text>')
    thresholds = [line for line in lines if line.marks_above]
    for s in series:
        xvals = list(s.x) if s.x is not None else list(range(len(s.y)))
        segments: list[list[tuple[float, float]]] = [[]]
        for x, y in zip(xvals, s.y):
            if y is None or not math.isfinite(y):
                segments.append([])
                continue
            segments[-1].append((px(x), py(y)))
        dash = ' stroke-dasharray="5 4"' if s.dashed else ""
        for segment in segments:
            if len(segment) > 1:
                points = " ".join(f"{x:.1f},{y:.1f}" for x, y in segment)
                parts.append(f'<polyline class="line {s.style}" points="{points}"{dash}/>')
        if s.points:
            for x, y in zip(xvals, s.y):
                if y is None or not math.isfinite(y):
                    continue
                over = any(y > line.y for line in thresholds)
                label = categories[int(x)] if categories is not None and 0 <= int(x) < len(categories) else fmt(x)
                parts.append(f'<circle class="point {s.style}{" over" if over else ""}" cx="{px(x):.1f}" cy="{py(y):.1f}" '
                             f'r="{4 if over else 3}"><title>{escape(s.name)} at {escape(label)}: {escape(fmt(y))}'
                             f'{" (above threshold)" if over else ""}</title></circle>')
    for row_index, row in enumerate(legend_rows):
        y = 26 + 14 * row_index
        for item, x in row:
            dash = ' stroke-dasharray="5 4"' if item.dashed else ""
            parts.append(f'<line class="line {item.style}" x1="{x:.0f}" x2="{x + 14:.0f}" y1="{y - 4}" y2="{y - 4}"{dash}/>')
            parts.append(f'<text class="legend" x="{x + 18:.0f}" y="{y}">{escape(item.name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _describe(series: Sequence[Series], categories: Sequence[str] | None, band: tuple[float, float] | None,
              band_label: str, lines: Sequence[Line]) -> str:
    words = [f"{len(series)} series: " + ", ".join(s.name for s in series)]
    if categories:
        words.append(f"over {len(categories)} points from {categories[0]} to {categories[-1]}")
    if band:
        words.append(f"{band_label} band {fmt(band[0])} to {fmt(band[1])}")
    for line in lines:
        above = sum(1 for s in series for y in s.y if y is not None and math.isfinite(y) and y > line.y)
        words.append(f"{line.label} {fmt(line.y)}" + (f", {above} point(s) above it" if line.marks_above else ""))
    words.append("The numbers are in the table beside the chart.")
    return "; ".join(words)


def sparkline(values: Sequence[float | None], threshold: float | None = None, width: int = 120, height: int = 26,
              label: str = "") -> Markup:
    """A small trend line for tables; the row's numbers stay in the row."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return Markup('<span class="muted">–</span>')
    lo, hi = min(finite + ([threshold] if threshold is not None else [])), max(finite + ([threshold] if threshold is not None else []))
    if hi - lo < 1e-12:
        hi, lo = hi + 1, lo - 1
    n = max(len(values) - 1, 1)

    def py(v: float) -> float:
        return 2 + (1 - (v - lo) / (hi - lo)) * (height - 4)

    points = " ".join(f"{i / n * (width - 4) + 2:.1f},{py(v):.1f}" for i, v in enumerate(values) if v is not None and math.isfinite(v))
    parts = [f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
             f'aria-label="{escape(label or "trend")}: {escape(", ".join(fmt(v, 3) for v in finite[-5:]))} (latest last)">']
    if threshold is not None:
        parts.append(f'<line class="threshold" x1="0" x2="{width}" y1="{py(threshold):.1f}" y2="{py(threshold):.1f}"/>')
    parts.append(f'<polyline class="line s1" points="{points}"/>')
    last = [(i, v) for i, v in enumerate(values) if v is not None and math.isfinite(v)][-1]
    over = threshold is not None and last[1] > threshold
    parts.append(f'<circle class="point s1{" over" if over else ""}" cx="{last[0] / n * (width - 4) + 2:.1f}" cy="{py(last[1]):.1f}" r="2.5"/>')
    parts.append("</svg>")
    return Markup("".join(parts))
