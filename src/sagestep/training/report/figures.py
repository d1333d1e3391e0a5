"""The report's pictures: PNG plots drawn with matplotlib's Agg canvas (no pyplot state), returned as base64 data
URIs, and small inline SVGs (a sparkline per numeric feature, a disparate-impact gauge per protected attribute).

Each function takes the numbers to draw and returns something the template inlines as is; none reads a file.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from markupsafe import Markup, escape

from sagestep.training.report.formatting import fmt, fmt_stat
from sagestep.training.gate import finite_number

HIST_BINS = 30
PNG_DPI = 144

# Palette shared by the CSS and the plots.
INK = "#1f2937"
MUTED = "#6b7280"
GRID = "#e5e7eb"
BLUE = "#2563eb"
RED = "#dc2626"
TEAL = "#0d9488"
GREEN = "#16a34a"
AMBER = "#d97706"


@contextmanager
def _figure(width: float, height: float, left: float = 0.7) -> Iterator[Any]:
    """A matplotlib Figure on the Agg canvas (no pyplot, no global backend), styled for the report.

    Margins are fixed (`left` in inches, for the y tick labels) rather than computed by a layout engine, which
    would draw every figure twice."""
    import matplotlib as mpl
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    style = {
        "font.size": 9.5, "axes.titlesize": 10.5, "axes.labelsize": 9.5, "legend.fontsize": 8.5,
        "axes.edgecolor": "#9ca3af", "axes.labelcolor": INK, "text.color": INK,
        "xtick.color": MUTED, "ytick.color": MUTED, "axes.spines.top": False, "axes.spines.right": False,
        "axes.grid": True, "grid.color": GRID, "grid.linewidth": 0.8, "axes.axisbelow": True,
        "legend.frameon": False, "svg.hashsalt": "sagestep",
    }
    with mpl.rc_context(style):
        fig = Figure(figsize=(width, height))
        fig.subplots_adjust(left=left / width, right=1 - 0.15 / width, bottom=0.5 / height, top=1 - 0.12 / height)
        FigureCanvasAgg(fig)
        yield fig


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=PNG_DPI, facecolor="white", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")



def roc_plot(fpr: Sequence[float], tpr: Sequence[float], auc: float | None,
             point: tuple[float, float] | None, threshold: float | None, ks: tuple[float, float, float] | None) -> str:
    with _figure(5.4, 4.2) as fig:
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], ls="--", lw=1, color="#9ca3af", label="chance (AUC = 0.5)")
        ax.plot(fpr, tpr, color=BLUE, lw=2.2, label=f"model (AUC = {fmt(auc, 3)})")
        ax.fill_between(fpr, tpr, step=None, color=BLUE, alpha=0.06)
        if ks is not None:
            x, lo, hi = ks
            ax.plot([x, x], [lo, hi], color=AMBER, lw=1.4, ls=":", label=f"KS = {hi - lo:.3f}")
        if point is not None and threshold is not None and all(math.isfinite(v) for v in point):
            tpr_t, fpr_t = point
            ax.scatter([fpr_t], [tpr_t], s=70, color=RED, edgecolor="white", linewidth=1.5, zorder=5,
                       label=f"threshold {threshold:g}: TPR {tpr_t:.2f}, FPR {fpr_t:.2f}")
        ax.set_xlim(-0.01, 1.01)
        ax.set_ylim(-0.01, 1.01)
        ax.set_aspect("equal")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.legend(loc="lower right")
        return _png(fig)


def distribution_plot(y: np.ndarray, s: np.ndarray, threshold: float | None, positive_name: str,
                      negative_name: str) -> str:
    lo, hi = min(0.0, float(s.min())), max(1.0, float(s.max()))
    bins = np.linspace(lo, hi, HIST_BINS + 1)
    with _figure(5.4, 4.2) as fig:
        ax = fig.add_subplot()
        for mask, colour, name in ((y == 0, TEAL, negative_name), (y == 1, RED, positive_name)):
            if mask.any():
                ax.hist(s[mask], bins=bins, density=True, color=colour, alpha=0.28, label=f"{name} (n={int(mask.sum())})")
                ax.hist(s[mask], bins=bins, density=True, histtype="step", color=colour, lw=1.6)
        if threshold is not None:
            ax.axvspan(threshold, hi, color="#f3f4f6", zorder=0)
            ax.axvline(threshold, color=INK, lw=1.4, ls="--", label=f"threshold {threshold:g} (declined at or above)")
        ax.set_xlim(lo, hi)
        ax.set_xlabel("score (predicted probability of the positive class)")
        ax.set_ylabel("density")
        ax.legend(loc="upper right", frameon=True, facecolor="white", edgecolor="none", framealpha=0.92)
        return _png(fig)


def calibration_plot(bins: Sequence[Mapping[str, Any]]) -> str:
    x = [float(b["mean_score"]) for b in bins]
    y = [float(b["observed_rate"]) for b in bins]
    counts = np.array([float(b.get("count", 1)) for b in bins])
    top = max(1.0, *x, *y) if x else 1.0
    with _figure(5.4, 4.2) as fig:
        ax = fig.add_subplot()
        ax.plot([0, top], [0, top], ls="--", lw=1, color="#9ca3af", label="perfectly calibrated")
        sizes = 30 + 120 * counts / counts.max() if counts.size and counts.max() > 0 else 40
        ax.plot(x, y, color=BLUE, lw=1.6)
        ax.scatter(x, y, s=sizes, color=BLUE, edgecolor="white", linewidth=1.2, zorder=5,
                   label="score bin (size = rows)")
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.set_aspect("equal")
        ax.set_xlabel("mean score in bin")
        ax.set_ylabel("observed positive rate")
        ax.legend(loc="upper left")
        return _png(fig)


def shap_plot(features: Sequence[Mapping[str, Any]]) -> str:
    rows = list(features)[::-1]
    names = [str(r["name"]) for r in rows]
    values = [float(r["mean_abs_shap"]) for r in rows]
    height = 0.8 + 0.3 * len(rows)
    label_width = 0.25 + 0.075 * max((len(n) for n in names), default=4)  # inches, at 9.5 pt
    with _figure(5.4, max(height, 2.2), left=min(label_width, 2.4)) as fig:
        ax = fig.add_subplot()
        bars = ax.barh(names, values, color=BLUE, alpha=0.85, height=0.68)
        top = max(values) if values else 1.0
        for bar, row in zip(bars, rows):
            share = finite_number(row.get("share"))
            if share is not None:
                ax.text(bar.get_width() + top * 0.015, bar.get_y() + bar.get_height() / 2, f"{100 * share:.0f}%",
                        va="center", fontsize=8, color=MUTED)
        ax.set_xlim(0, top * 1.12)
        ax.grid(axis="y", visible=False)
        ax.set_xlabel("mean |SHAP| (log-odds)")
        ax.tick_params(axis="y", length=0)
        return _png(fig)


def sparkline_svg(buckets: Sequence[Mapping[str, Any]], width: int = 132, height: int = 28) -> Markup:
    """Inline SVG bars from Model Monitor KLL buckets (lower_bound, upper_bound, count)."""
    counts = [max(finite_number(b.get("count")) or 0.0, 0.0) for b in buckets]
    if not counts or max(counts) <= 0:
        return Markup("")
    top, n, gap = max(counts), len(counts), 1.5
    bar = (width - gap * (n - 1)) / n
    parts = [f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'role="img" aria-label="histogram">']
    for i, (bucket, count) in enumerate(zip(buckets, counts)):
        h = max(1.0, (height - 2) * count / top) if count else 0.0
        x = i * (bar + gap)
        tip = f"[{fmt_stat(bucket.get('lower_bound'))}, {fmt_stat(bucket.get('upper_bound'))}): {count:,.0f} rows"
        parts.append(f'<rect x="{x:.2f}" y="{height - h:.2f}" width="{bar:.2f}" height="{h:.2f}" rx="1">'
                     f"<title>{escape(tip)}</title></rect>")
    parts.append("</svg>")
    return Markup("".join(parts))


def di_gauge_svg(value: float | None, low: float, high: float, width: int = 120, height: int = 26) -> Markup:
    """A scale from 0.4 to 1.6 with the accepted band shaded and a marker at the disparate impact."""
    lo_scale, hi_scale, pad = 0.4, 1.6, 6

    def x(v: float) -> float:
        v = min(max(v, lo_scale), hi_scale)
        return pad + (width - 2 * pad) * (v - lo_scale) / (hi_scale - lo_scale)

    parts = [f'<svg class="gauge" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="disparate impact against the band [{low:g}, {high:g}]">',
             f'<rect x="{pad}" y="11" width="{width - 2 * pad}" height="4" rx="2" fill="{GRID}"/>',
             f'<rect x="{x(low):.1f}" y="8" width="{x(high) - x(low):.1f}" height="10" rx="2" fill="#bbf7d0"/>',
             f'<line x1="{x(1.0):.1f}" x2="{x(1.0):.1f}" y1="6" y2="20" stroke="#9ca3af" stroke-width="1"/>']
    if value is not None:
        inside = low <= value <= high
        colour = GREEN if inside else RED
        parts.append(f'<circle cx="{x(value):.1f}" cy="13" r="5.5" fill="{colour}" stroke="white" stroke-width="1.5">'
                     f"<title>DI {value:.3f}</title></circle>")
    parts.append("</svg>")
    return Markup("".join(parts))


def predicted_vs_actual_plot(y: np.ndarray, p: np.ndarray, target: str) -> str:
    lo, hi = float(min(y.min(), p.min())), float(max(y.max(), p.max()))
    with _figure(5.4, 4.2) as fig:
        ax = fig.add_subplot()
        ax.plot([lo, hi], [lo, hi], ls="--", lw=1, color="#9ca3af", label="perfect prediction")
        ax.scatter(y, p, s=9, color=BLUE, alpha=0.45, edgecolor="none", label=f"test rows (n={y.size})")
        ax.set_xlabel(f"actual {target}")
        ax.set_ylabel(f"predicted {target}")
        ax.legend(loc="upper left")
        return _png(fig)


def residuals_over_time_plot(times: Sequence[Any], residuals: np.ndarray, naive_residuals: np.ndarray | None) -> str:
    import pandas as pd

    when = pd.to_datetime(pd.Series(list(times)), errors="coerce").to_numpy()
    with _figure(11.2, 3.6) as fig:
        ax = fig.add_subplot()
        ax.axhline(0, color=INK, lw=1)
        if naive_residuals is not None and np.isfinite(naive_residuals).any():
            ax.plot(when, naive_residuals, lw=0.9, color="#9ca3af", label="naive seasonal forecast")
        ax.plot(when, residuals, lw=1.1, color=BLUE, label="model")
        ax.set_ylabel("actual − predicted")
        ax.legend(loc="upper left")
        return _png(fig)


def tuning_trials_plot(trials: Sequence[Mapping[str, Any]], metric: str, best: str | None) -> str:
    with _figure(11.2, 3.6) as fig:
        ax = fig.add_subplot()
        done = [(i + 1, t["Objective"]) for i, t in enumerate(trials) if isinstance(t.get("Objective"), int | float)]
        failed = [i + 1 for i, t in enumerate(trials) if not isinstance(t.get("Objective"), int | float)]
        if done:
            ax.plot([x for x, _ in done], [v for _, v in done], "o-", color=BLUE, lw=1, ms=6, label="trial objective")
        for x, value in done:
            if best is not None and trials[x - 1].get("TrainingJobName") == best:
                ax.scatter([x], [value], s=120, color=GREEN, zorder=5, label="best trial (registered)")
        if failed:
            floor = min((v for _, v in done), default=0.0)
            ax.scatter(failed, [floor] * len(failed), marker="x", s=60, color=RED, label="failed trial (no objective)")
        ax.set_xlabel("trial (in creation order)")
        ax.set_ylabel(metric)
        ax.legend(loc="lower right")
        return _png(fig)
