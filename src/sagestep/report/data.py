"""The HTML training report: one self-contained file a person would rather look at than read.

    write_training_report(run_dir, execution, out_path)

`run_dir` is a local copy of the run's S3 prefix `runs/<execution>/` (preprocess/, train/, evaluation/,
baseline/); `execution` is the execution record (`ExecutionRecord.to_dict()`: `{"execution": {...}, "history":
[...]}`). The page has a header with the gate's verdict, the key numbers as cards, then: gate decision, ROC curve,
score distributions by true class, calibration, metrics at the decision threshold, SHAP importance, fairness,
data profile, data checks and lineage. Plots are PNGs drawn with matplotlib's Agg canvas (no pyplot state) and
inlined as base64; sparklines and gauges are inline SVG; CSS is inline. A file that is missing or unreadable
turns its section into a note saying which file and why, so a failed run (no evaluation/, no baseline/) still
renders.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import math
import tarfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from jinja2 import Environment, StrictUndefined
from markupsafe import Markup, escape

import sagestep
from sagestep.training.gate import finite_number

# Files of a run, relative to run_dir (the layout the training state machine writes under runs/<execution>/).
RUN_FILES: dict[str, str] = {
    "validation_report": "preprocess/report/validation_report.json",
    "manifest": "preprocess/report/manifest.json",
    "dataset_config": "preprocess/config/dataset_config.json",
    "evaluation": "evaluation/evaluation.json",
    "summary": "evaluation/summary.json",
    "bias": "evaluation/bias.json",
    "explainability": "evaluation/explainability.json",
    "constraints": "evaluation/model_quality_constraints.json",
    "evaluation_manifest": "evaluation/manifest.json",
    "statistics": "baseline/statistics.json",
}
SCORES_FILE = "evaluation/scores.csv"
MODEL_ARCHIVE_GLOB = "train/*/output/model.tar.gz"
MODEL_ARCHIVE_SHOWN = "train/<job>/output/model.tar.gz"
MODEL_META_FILE = "model_meta.json"
GATE_STATE = "Quality gate"
GATE_REFUSED_ERROR = "QualityGateRefused"

TOP_SHAP = 15
TOP_CATEGORIES = 3
CALIBRATION_BINS = 10
HIST_BINS = 30
PNG_DPI = 144
MAX_CAUSE_CHARS = 1500

# Palette shared by the CSS and the plots.
INK = "#1f2937"
MUTED = "#6b7280"
GRID = "#e5e7eb"
BLUE = "#2563eb"
RED = "#dc2626"
TEAL = "#0d9488"
GREEN = "#16a34a"
AMBER = "#d97706"


# --------------------------------------------------------------------------------------------- reading the run


@dataclass
class RunFiles:
    """The parsed documents of a run directory and, for each one that could not be used, why."""

    run_dir: Path
    documents: dict[str, Any] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)  # relative path -> "was not found" / "could not be read: …"
    scores: pd.DataFrame | None = None
    model_meta: dict[str, Any] | None = None
    model_archive: str | None = None
    why_absent: str = ""  # appended to "was not found", e.g. "the execution ended FAILED at “Evaluate model”"

    def get(self, key: str) -> Any:
        return self.documents.get(key)

    def missing(self, *paths: str) -> str:
        """A sentence naming the files (relative paths) a section needs and what is wrong with them."""
        parts = [f"{p} {self.problems.get(p, 'was not found')}" for p in paths]
        absent = any(p not in self.problems for p in paths)
        return "Not available: " + "; ".join(parts) + (f" ({self.why_absent})" if absent and self.why_absent else "") + "."


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _read_scores(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path)
    absent = [c for c in ("label", "score") if c not in table.columns]
    if absent:
        raise ValueError(f"no column {absent} (expected id, label, score as written by ml/evaluate.py)")
    table = table.assign(label=pd.to_numeric(table["label"], errors="coerce"),
                         score=pd.to_numeric(table["score"], errors="coerce")).dropna(subset=["label", "score"])
    if table.empty:
        raise ValueError("no row with a numeric label and score")
    return table


def _read_model_meta(archive: Path) -> dict[str, Any]:
    with tarfile.open(archive) as tar:
        member = next((m for m in tar.getmembers() if m.isfile() and Path(m.name).name == MODEL_META_FILE), None)
        if member is None:
            raise ValueError(f"holds no {MODEL_META_FILE}; it was not written by ml/train.py")
        handle = tar.extractfile(member)
        assert handle is not None
        meta = json.loads(handle.read().decode("utf-8"))
    if not isinstance(meta, dict):
        raise ValueError(f"{MODEL_META_FILE} is not a JSON object")
    return meta


def _pick_archive(run_dir: Path, training_job_name: str | None) -> Path | None:
    archives = sorted(run_dir.glob(MODEL_ARCHIVE_GLOB))
    if training_job_name:
        for archive in archives:
            if archive.parent.parent.name == training_job_name:
                return archive
    return max(archives, key=lambda p: p.stat().st_mtime) if archives else None


def read_run(run_dir: Path, training_job_name: str | None = None) -> RunFiles:
    """Read every file the report uses; a missing or malformed file is recorded in `problems`, never raised."""
    run = RunFiles(Path(run_dir))
    for key, rel in RUN_FILES.items():
        path = run.run_dir / rel
        if not path.is_file():
            continue
        try:
            document = _read_json(path)
        except (OSError, ValueError) as exc:
            run.problems[rel] = f"could not be read ({type(exc).__name__}: {exc})"
            continue
        if isinstance(document, dict):
            run.documents[key] = document
        else:
            run.problems[rel] = f"could not be read (a JSON object was expected, got {type(document).__name__})"
    path = run.run_dir / SCORES_FILE
    if path.is_file():
        try:
            run.scores = _read_scores(path)
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            run.problems[SCORES_FILE] = f"could not be read ({exc})"
    archive = _pick_archive(run.run_dir, training_job_name)
    if archive is not None:
        run.model_archive = archive.relative_to(run.run_dir).as_posix()
        try:
            run.model_meta = _read_model_meta(archive)
        except (OSError, ValueError, tarfile.TarError) as exc:
            run.problems[MODEL_ARCHIVE_SHOWN] = f"could not be read ({run.model_archive}: {exc})"
    return run


# --------------------------------------------------------------------------------------------- the execution record


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str | bytes):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


@dataclass
class ExecutionView:
    """What the report needs from the execution record, whether it succeeded, failed or is still running."""

    arn: str | None
    name: str | None
    state_machine_arn: str | None
    status: str | None
    start: str | None
    stop: str | None
    error: str | None
    cause: str | None
    input: dict[str, Any]
    state: dict[str, Any]  # the output, else the last state's output seen in the history
    failed_state: str | None

    @property
    def gate(self) -> dict[str, Any] | None:
        gate = self.state.get("Gate")
        if isinstance(gate, Mapping):
            return dict(gate)
        if self.error == GATE_REFUSED_ERROR:  # the Fail state's cause is the JSON list of reasons
            reasons = _maybe_json(self.cause)
            return {"Passed": False, "Reasons": reasons if isinstance(reasons, list) else [str(self.cause)]}
        return None

    def section(self, key: str) -> dict[str, Any]:
        value = self.state.get(key)
        return dict(value) if isinstance(value, Mapping) else {}


def _failed_state(history: Sequence[Mapping[str, Any]]) -> str | None:
    """The state whose failure ended (or first broke) the run: walk back from the first failure event."""
    by_id = {e.get("id"): e for e in history if isinstance(e, Mapping)}
    for event in history:
        kind = str(event.get("type", ""))
        if not (kind.endswith("Failed") or kind.endswith("TimedOut")) or kind.startswith("Execution"):
            continue
        current: Mapping[str, Any] | None = event
        for _ in range(50):
            if current is None:
                break
            entered = current.get("stateEnteredEventDetails")
            if isinstance(entered, Mapping):
                return entered.get("name")
            current = by_id.get(current.get("previousEventId"))
        earlier = [e for e in history if e.get("id", 0) < event.get("id", 0) and "stateEnteredEventDetails" in e]
        return earlier[-1]["stateEnteredEventDetails"].get("name") if earlier else None
    return None


def execution_view(record: Mapping[str, Any]) -> ExecutionView:
    if not isinstance(record, Mapping):
        raise TypeError(f"execution must be the execution record dict ({{'execution': ..., 'history': [...]}}), "
                        f"got {type(record).__name__}")
    ex = record.get("execution") if isinstance(record.get("execution"), Mapping) else {}
    history = [e for e in (record.get("history") or []) if isinstance(e, Mapping)]
    output = _maybe_json(ex.get("output"))
    state: dict[str, Any] = dict(output) if isinstance(output, Mapping) else {}
    if not state:
        for event in reversed(history):
            exited = event.get("stateExitedEventDetails")
            parsed = _maybe_json(exited.get("output")) if isinstance(exited, Mapping) else None
            if isinstance(parsed, Mapping):
                state = dict(parsed)
                break
    execution_input = _maybe_json(ex.get("input"))
    return ExecutionView(
        arn=ex.get("executionArn"),
        name=ex.get("name"),
        state_machine_arn=ex.get("stateMachineArn"),
        status=ex.get("status"),
        start=_when(ex.get("startDate")),
        stop=_when(ex.get("stopDate")),
        error=ex.get("error"),
        cause=_text(ex.get("cause")),
        input=dict(execution_input) if isinstance(execution_input, Mapping) else {},
        state=state,
        failed_state=_failed_state(history),
    )


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)


def _when(value: Any) -> str | None:
    """An ISO timestamp (or datetime) as `2026-05-01 10:00:00 UTC`; other text unchanged."""
    text = _text(value)
    try:
        moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(text))
    except ValueError:
        return text
    if moment.tzinfo is not None:
        return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _parse_when(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.removesuffix(" UTC") + ("+00:00" if text.endswith(" UTC") else ""))
    except ValueError:
        return None


def _duration(start: str | None, stop: str | None) -> str | None:
    begin, end = _parse_when(start), _parse_when(stop)
    try:
        seconds = (end - begin).total_seconds()  # type: ignore[operator]
    except TypeError:
        return None
    if seconds < 0:
        return None
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


# --------------------------------------------------------------------------------------------- formatting


def fmt(value: Any, digits: int = 3) -> str:
    """A metric with `digits` decimals; "—" when missing or not a number."""
    number = finite_number(value)
    return "—" if number is None else f"{number:.{digits}f}"


def fmt_signed(value: Any, digits: int = 3) -> str:
    number = finite_number(value)
    return "—" if number is None else f"{number:+.{digits}f}".replace("-", "−")


def pct(value: Any, digits: int = 1) -> str:
    number = finite_number(value)
    return "—" if number is None else f"{100 * number:.{digits}f}%"


def fmt_stat(value: Any) -> str:
    """A data statistic: thousands separators for large values, a few significant digits for small ones."""
    number = finite_number(value)
    if number is None:
        return "—"
    size = abs(number)
    if size >= 1000:
        return f"{number:,.0f}"
    if size >= 100 or number == int(number):
        return f"{number:,.1f}".rstrip("0").rstrip(".")
    return f"{number:.3g}"


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


# --------------------------------------------------------------------------------------------- plots


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


def roc_points(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(fpr, tpr, auc) over every distinct score, ties handled as one step; numpy only (no sklearn import)."""
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s_sorted)), y.size - 1]
    tps = np.cumsum(y_sorted)[last]
    fps = last + 1 - tps
    tpr = np.r_[0.0, tps / tps[-1]]
    fpr = np.r_[0.0, fps / fps[-1]]
    return fpr, tpr, float(np.trapezoid(tpr, fpr))


def _labels(y: np.ndarray, s: np.ndarray, threshold: float) -> tuple[float, float]:
    positive, negative = y == 1, y == 0
    tpr = float(np.mean(s[positive] >= threshold)) if positive.any() else math.nan
    fpr = float(np.mean(s[negative] >= threshold)) if negative.any() else math.nan
    return tpr, fpr


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


# --------------------------------------------------------------------------------------------- sections


# What a document of an unexpected shape raises while a section is built.
SHAPE_ERRORS = (AttributeError, KeyError, TypeError, ValueError, IndexError)
T = TypeVar("T")
EMPTY_GATE: dict[str, Any] = {"criteria": [], "passed": None, "reasons": [], "checks": [], "champion": None,
                              "registered": None, "metadata": []}


def _section(missing: str | None = None, **content: Any) -> dict[str, Any]:
    return {"missing": missing, **content}


def _gate_section(view: ExecutionView, config: Mapping[str, Any] | None) -> dict[str, Any]:
    gate = view.gate
    thresholds = (config or {}).get("thresholds") or {}
    criteria = []
    if thresholds:
        band = thresholds.get("disparate_impact") or [None, None]
        criteria = [
            ("Test AUC", f"at least {fmt(thresholds.get('min_auc'), 2)}"),
            ("Disparate impact", f"within [{fmt_stat(band[0])}, {fmt_stat(band[1])}] for every protected attribute"),
            ("Champion", f"candidate AUC at least the approved champion's minus {fmt_stat(thresholds.get('champion_margin'))}"),
            ("Data checks", "every check of the validation report passed"),
        ]
    registered = view.section("Registered").get("ModelPackageArn")
    if gate is None:
        if view.status in (None, ""):
            why = "No execution record was given, so the gate's decision is unknown."
        elif view.status == "RUNNING":
            why = "The execution is still running; the gate has not decided yet."
        else:
            where = f" at “{view.failed_state}”" if view.failed_state else ""
            why = f"The quality gate did not run: the execution ended {view.status}{where}."
        return {**EMPTY_GATE, "missing": why, "criteria": criteria, "registered": registered}
    reasons = gate.get("Reasons") or []
    if not isinstance(reasons, list):
        reasons = [reasons]
    checks = [c for c in (gate.get("Checks") or []) if isinstance(c, Mapping)]
    metadata = gate.get("CustomerMetadataProperties") or {}
    return _section(
        None,
        criteria=criteria,
        passed=bool(gate.get("Passed")),
        reasons=[str(r) for r in reasons],
        checks=[{"name": str(c.get("Name", "")), "passed": bool(c.get("Passed")), "detail": str(c.get("Detail", ""))}
                for c in checks],
        champion=gate.get("ChampionModelPackageArn"),
        registered=registered,
        metadata=sorted((str(k), str(v)) for k, v in metadata.items()) if isinstance(metadata, Mapping) else [],
    )


def _verdict(view: ExecutionView) -> dict[str, str]:
    gate = view.gate
    if gate is not None:
        if gate.get("Passed"):
            arn = view.section("Registered").get("ModelPackageArn")
            detail = "Registered, pending manual approval" if arn else "Every check passed"
            return {"kind": "pass", "title": "Gate passed", "detail": detail}
        n = len(gate.get("Reasons") or [])
        return {"kind": "fail", "title": "Gate refused", "detail": f"{n} reason{'s' if n != 1 else ''} below"}
    if view.status == "RUNNING":
        return {"kind": "pending", "title": "Running", "detail": "the gate has not decided yet"}
    if view.status:
        where = f" at “{view.failed_state}”" if view.failed_state else ""
        return {"kind": "error", "title": f"Run {view.status.lower().replace('_', ' ')}",
                "detail": f"before the quality gate{where}"}
    return {"kind": "pending", "title": "No gate decision", "detail": "no execution record given"}


def _cards(run: RunFiles) -> list[dict[str, Any]]:
    summary = run.get("summary") or {}
    metrics = (run.get("evaluation") or {}).get("binary_classification_metrics") or {}
    credit = (run.get("evaluation") or {}).get("credit_metrics") or {}

    def metric(name: str) -> Any:
        value = (metrics.get(name) or {}).get("value") if isinstance(metrics.get(name), Mapping) else None
        return _first(finite_number(summary.get(name)), finite_number(value))

    auc, min_auc = metric("auc"), finite_number(summary.get("min_auc"))
    threshold = finite_number(summary.get("decision_threshold"))
    n_test = _first(finite_number(summary.get("n_test")), finite_number(((run.get("evaluation") or {}).get("dataset") or {})
                                                              .get("item_count")))
    auc_note, auc_state = "", ""
    if auc is not None and min_auc is not None:
        auc_state = "pass" if auc >= min_auc else "fail"
        auc_note = f"{'≥' if auc >= min_auc else '<'} minimum {min_auc:.2f}"
    return [
        {"label": "Test AUC", "value": fmt(auc, 3), "note": auc_note or "area under the ROC curve", "state": auc_state},
        {"label": "KS", "value": fmt(_first(finite_number(summary.get("ks")), finite_number(credit.get("ks"))), 3),
         "note": "max gap TPR − FPR", "state": ""},
        {"label": "Gini", "value": fmt(_first(finite_number(summary.get("gini")), finite_number(credit.get("gini"))), 3),
         "note": "2 · AUC − 1", "state": ""},
        {"label": "F1", "value": fmt(metric("f1"), 3),
         "note": f"at threshold {threshold:g}" if threshold is not None else "at the decision threshold", "state": ""},
        {"label": "Test rows", "value": f"{int(n_test):,}" if n_test is not None else "—",
         "note": f"positive rate {pct(summary.get('positive_rate'))}" if summary.get("positive_rate") is not None
         else "rows scored", "state": ""},
    ]


def _class_names(config: Mapping[str, Any] | None) -> tuple[str, str]:
    target = (config or {}).get("target")
    positive = (config or {}).get("positive_label")
    if target and positive is not None:
        return f"{target} = {positive}", f"{target} ≠ {positive}"
    return "positive (1)", "negative (0)"


def _performance_sections(run: RunFiles, threshold: float | None, config: Mapping[str, Any] | None
                          ) -> dict[str, dict[str, Any]]:
    evaluation = run.get("evaluation") or {}
    metrics = evaluation.get("binary_classification_metrics") or {}
    out: dict[str, dict[str, Any]] = {}
    scores = run.scores
    y = scores["label"].to_numpy(dtype=np.float64) if scores is not None else None
    s = scores["score"].to_numpy(dtype=np.float64) if scores is not None else None
    both_classes = y is not None and 0 < y.sum() < y.size

    # ROC: from the scores, else from the downsampled curve in evaluation.json.
    if y is not None and s is not None and both_classes:
        fpr, tpr, auc = roc_points(y, s)
        k = int(np.argmax(tpr - fpr))
        point = _labels(y, s, threshold) if threshold is not None else None
        image = roc_plot(fpr, tpr, auc, point, threshold, (float(fpr[k]), float(fpr[k]), float(tpr[k])))
        out["roc"] = _section(None, image=image, source=SCORES_FILE)
    elif isinstance(metrics.get("receiver_operating_characteristic_curve"), Mapping):
        curve = metrics["receiver_operating_characteristic_curve"]
        auc = finite_number((metrics.get("auc") or {}).get("value"))
        tpr_t = finite_number((metrics.get("true_positive_rate") or {}).get("value"))
        fpr_t = finite_number((metrics.get("false_positive_rate") or {}).get("value"))
        point = (tpr_t, fpr_t) if tpr_t is not None and fpr_t is not None else None
        image = roc_plot(curve.get("false_positive_rates", []), curve.get("true_positive_rates", []), auc, point,
                         threshold, None)
        out["roc"] = _section(None, image=image, source=f"{RUN_FILES['evaluation']} (downsampled curve; "
                                                        f"{SCORES_FILE} unavailable)")
    elif y is not None and not both_classes:
        out["roc"] = _section(f"Not available: {SCORES_FILE} holds a single class, so there is no ROC curve.")
    else:
        out["roc"] = _section(run.missing(SCORES_FILE, RUN_FILES["evaluation"]))

    # Score distributions by true class.
    if y is not None and s is not None:
        positive_name, negative_name = _class_names(config)
        out["distribution"] = _section(None, image=distribution_plot(y, s, threshold, positive_name, negative_name))
    else:
        out["distribution"] = _section(run.missing(SCORES_FILE))

    # Calibration: the table evaluate.py stored (score deciles), else computed from the scores.
    table = evaluation.get("calibration")
    if not (isinstance(table, Mapping) and table.get("bins")) and y is not None and s is not None:
        from sagestep.training.metrics import calibration  # imports scikit-learn: only when evaluation.json lacks the table

        table = calibration(y, s, CALIBRATION_BINS)
    if isinstance(table, Mapping) and table.get("bins"):
        out["calibration"] = _section(None, image=calibration_plot(table["bins"]),
                                      brier=fmt(table.get("brier_score"), 4),
                                      ece=fmt(table.get("expected_calibration_error"), 4),
                                      bins=[{"range": f"{fmt(b.get('lower'), 3)}–{fmt(b.get('upper'), 3)}",
                                             "count": int(b.get("count", 0)), "mean_score": fmt(b.get("mean_score")),
                                             "observed": fmt(b.get("observed_rate"))} for b in table["bins"]])
    else:
        out["calibration"] = _section(run.missing(SCORES_FILE, RUN_FILES["evaluation"]))

    # Metrics at the threshold, with the model-quality constraints.
    if metrics:
        constraints = (run.get("constraints") or {}).get("binary_classification_constraints") or {}
        rows = []
        for name in ("accuracy", "precision", "recall", "f1", "auc", "true_positive_rate", "false_positive_rate"):
            entry = metrics.get(name)
            if not isinstance(entry, Mapping):
                continue
            constraint = constraints.get(name) or {}
            op = {"LessThanThreshold": "≥", "GreaterThanThreshold": "≤"}.get(constraint.get("comparison_operator"), "")
            rows.append({"name": name.replace("_", " "), "value": fmt(entry.get("value")),
                         "std": fmt(entry.get("standard_deviation")),
                         "constant": fmt((metrics.get(f"{name}_best_constant_classifier") or {}).get("value")),
                         "constraint": f"{op} {fmt(constraint.get('threshold'))}" if constraint else ""})
        matrix = metrics.get("confusion_matrix") or {}
        cm = {f"{a}{b}": (matrix.get(a) or {}).get(b, "—") for a in "01" for b in "01"}
        out["quality"] = _section(None, rows=rows, cm=cm, has_constraints=bool(constraints))
    else:
        out["quality"] = _section(run.missing(RUN_FILES["evaluation"]))
    return out


def _shap_section(run: RunFiles) -> dict[str, Any]:
    doc = run.get("explainability")
    features = doc.get("features") if isinstance(doc, Mapping) else None
    if not features and isinstance(doc, Mapping) and isinstance(doc.get("global_shap_values"), Mapping):
        values = doc["global_shap_values"]
        total = sum(float(v) for v in values.values()) or 1.0
        features = [{"name": k, "mean_abs_shap": float(v), "share": float(v) / total}
                    for k, v in sorted(values.items(), key=lambda kv: -float(kv[1]))]
    if not features:
        return _section(run.missing(RUN_FILES["explainability"]))
    top = [f for f in features if finite_number(f.get("mean_abs_shap")) is not None][:TOP_SHAP]
    return _section(None, image=shap_plot(top), n_features=len(features), shown=len(top),
                    n_rows=doc.get("n_rows"), method=doc.get("method", "tree_shap"),
                    algorithm=doc.get("algorithm"))


def _fairness_section(run: RunFiles) -> dict[str, Any]:
    bias = run.get("bias")
    if not isinstance(bias, Mapping) or not isinstance(bias.get("attributes"), list):
        return _section(run.missing(RUN_FILES["bias"]))
    low, high = (list(bias.get("disparate_impact_bounds") or [0.8, 1.25]) + [0.8, 1.25])[:2]
    low, high = float(low), float(high)
    rows = []
    for a in bias["attributes"]:
        di = finite_number(a.get("disparate_impact"))
        passed = di is not None and low <= di <= high
        rows.append({
            "name": a.get("name"), "group": a.get("privileged_group", ""),
            "n_priv": a.get("n_privileged"), "n_unpriv": a.get("n_unprivileged"),
            "n_missing": a.get("n_missing_excluded") or 0,
            "rate_priv": pct(a.get("favourable_rate_privileged")),
            "rate_unpriv": pct(a.get("favourable_rate_unprivileged")),
            "bad_priv": pct(a.get("bad_rate_privileged")), "bad_unpriv": pct(a.get("bad_rate_unprivileged")),
            "di": fmt(di), "spd": fmt_signed(a.get("statistical_parity_difference")),
            "eod": fmt_signed(a.get("equal_opportunity_difference")),
            "passed": passed, "gauge": di_gauge_svg(di, low, high),
        })
    return _section(None, rows=rows, low=f"{low:g}", high=f"{high:g}", outcome=bias.get("favourable_outcome", ""),
                    approval=pct(bias.get("approval_rate")), n_rows=bias.get("n_rows"))


def _roles(config: Mapping[str, Any] | None) -> dict[str, str]:
    config = config or {}
    roles: dict[str, str] = {}
    features = config.get("features") or {}
    for name in (*(features.get("numeric") or []), *(features.get("categorical") or [])):
        roles[name] = "feature"
    for attr in config.get("protected_attributes") or []:
        if isinstance(attr, Mapping) and attr.get("name"):
            roles[attr["name"]] = "protected" if attr["name"] not in roles else "feature · protected"
    if config.get("target"):
        roles[config["target"]] = "target"
    if config.get("id_column"):
        roles[config["id_column"]] = "id"
    if config.get("event_time_column"):
        roles[config["event_time_column"]] = "time"
    return roles


def _missing_share(absent: float, total: float) -> str:
    if not total:
        return "—"
    share = absent / total
    return "<0.1%" if 0 < share < 0.001 else pct(share)


def _profile_section(run: RunFiles, config: Mapping[str, Any] | None) -> dict[str, Any]:
    stats = run.get("statistics")
    if not isinstance(stats, Mapping) or not isinstance(stats.get("features"), list):
        return _section(run.missing(RUN_FILES["statistics"]))
    roles = _roles(config)
    item_count = finite_number((stats.get("dataset") or {}).get("item_count"))
    rows = []
    for feature in stats["features"]:
        if not isinstance(feature, Mapping):
            continue
        numeric = feature.get("numerical_statistics")
        block = numeric if isinstance(numeric, Mapping) else feature.get("string_statistics") or {}
        common = block.get("common") or {}
        present, absent = finite_number(common.get("num_present")) or 0.0, finite_number(common.get("num_missing")) or 0.0
        total = item_count or (present + absent)
        row = {"name": feature.get("name"), "type": feature.get("inferred_type", "?"),
               "role": roles.get(str(feature.get("name")), ""),
               "missing": _missing_share(absent, total), "missing_any": absent > 0,
               "numeric": isinstance(numeric, Mapping)}
        if row["numeric"]:
            buckets = ((block.get("distribution") or {}).get("kll") or {}).get("buckets") or []
            row.update(mean=fmt_stat(block.get("mean")), std=fmt_stat(block.get("std_dev")),
                       min=fmt_stat(block.get("min")), max=fmt_stat(block.get("max")), spark=sparkline_svg(buckets))
        else:
            buckets = ((block.get("distribution") or {}).get("categorical") or {}).get("buckets") or []
            distinct = finite_number(block.get("distinct_count")) or len(buckets)
            top = [{"value": str(b.get("value")), "share": pct((finite_number(b.get("count")) or 0) / present if present
                                                              else None, 0)}
                   for b in buckets[:TOP_CATEGORIES]]
            row.update(top=top, more=max(int(distinct) - len(top), 0), distinct=int(distinct))
        rows.append(row)
    return _section(None, rows=rows, n_rows=f"{int(item_count):,}" if item_count is not None else "—",
                    source=RUN_FILES["statistics"])


def _checks_section(run: RunFiles) -> dict[str, Any]:
    report = run.get("validation_report")
    if not isinstance(report, Mapping):
        return _section(run.missing(RUN_FILES["validation_report"]))
    checks = [{"name": str(c.get("name", "?")).replace("_", " "), "passed": bool(c.get("passed")),
               "detail": str(c.get("detail", "")), "fix": c.get("fix") if not c.get("passed") else None}
              for c in report.get("checks") or [] if isinstance(c, Mapping)]
    return _section(None, checks=checks, passed=bool(report.get("passed")),
                    n_rows=f"{int(report['n_rows']):,}" if finite_number(report.get("n_rows")) is not None else "—",
                    files=[str(f) for f in report.get("files") or []],
                    n_failed=sum(1 for c in checks if not c["passed"]))


def _lineage_section(run: RunFiles, view: ExecutionView, config: Mapping[str, Any] | None) -> dict[str, Any]:
    manifest = run.get("manifest") or {}
    ev_manifest = run.get("evaluation_manifest") or {}
    meta = run.model_meta or {}
    run_info, training = view.section("Run"), view.section("Training")
    registered = view.section("Registered").get("ModelPackageArn")
    gate = view.gate or {}
    code = manifest.get("code") or {}
    model_record = ev_manifest.get("model") or {}
    algorithm = _first(meta.get("algorithm"), (run.get("summary") or {}).get("algorithm"),
                       view.input.get("Algorithm"), view.state.get("Algorithm"))

    execution = [
        ("Execution ARN", view.arn), ("State machine", view.state_machine_arn), ("Status", view.status),
        ("Started", view.start), ("Stopped", view.stop), ("Duration", _duration(view.start, view.stop)),
        ("Run outputs", run_info.get("OutputS3Uri")), ("Job prefix", run_info.get("JobPrefix")),
    ]
    data = [
        ("Data", _first(view.input.get("DataS3Uri"), view.state.get("DataS3Uri"))),
        ("Dataset config", _first(view.input.get("DatasetConfigS3Uri"), view.state.get("DatasetConfigS3Uri"))),
        ("Dataset", _first(manifest.get("dataset"), (config or {}).get("name"))),
        ("Config SHA-256", (manifest.get("config") or {}).get("sha256")),
        ("Resolved config SHA-256", (manifest.get("config") or {}).get("resolved_sha256")),
    ]
    split = manifest.get("split") or {}
    if split:
        data.append(("Split", f"{split.get('method', '?')}, seed {split.get('seed', '?')}, validation "
                              f"{split.get('validation_fraction', '?')}, test {split.get('test_fraction', '?')}"))
    files = [{"role": "input", "path": i.get("path"), "rows": i.get("rows"), "sha256": i.get("sha256")}
             for i in manifest.get("inputs") or [] if isinstance(i, Mapping)]
    for name in ("train", "validation", "test"):
        record = (manifest.get("outputs") or {}).get(name)
        if isinstance(record, Mapping):
            files.append({"role": name, "path": record.get("path"), "rows": record.get("rows"),
                          "sha256": record.get("sha256")})
    if model_record:
        files.append({"role": "model", "path": run.model_archive or model_record.get("path"), "rows": None,
                      "sha256": model_record.get("sha256")})
    model = [
        ("Code version", code.get("version")),
        ("Code SHA-256", code.get("sha256")),
        ("Algorithm", algorithm),
        ("Training job", training.get("JobName") or (run.model_archive.split("/")[1] if run.model_archive else None)),
        ("Model artifact", training.get("ModelDataUrl") or run.model_archive),
        ("Best iteration", meta.get("best_iteration")),
        ("Model package", registered),
        ("Champion at decision time", gate.get("ChampionModelPackageArn") if gate else None),
    ]
    resolved = meta.get("hyperparameters") or ev_manifest.get("hyperparameters") or {}
    requested = training.get("HyperParameters") or run_info.get("HyperParameters") or {}
    names = list(dict.fromkeys([*resolved, *requested]))
    hyper = [{"name": n, "value": str(resolved.get(n, requested.get(n))), "requested": n in requested}
             for n in names]
    train_metrics = [(k.replace("_", " "), fmt(v, 4)) for k, v in (meta.get("metrics") or {}).items()]
    if not train_metrics:
        train_metrics = [(str(m.get("MetricName")), fmt(m.get("Value"), 4)) for m in training.get("Metrics") or []
                         if isinstance(m, Mapping)]
    problems = []
    if not manifest:
        problems.append(run.missing(RUN_FILES["manifest"]))
    if not meta:
        problems.append(run.missing(MODEL_ARCHIVE_SHOWN))
    return _section(None, execution=[(k, v) for k, v in execution if v not in (None, "")],
                    data=[(k, v) for k, v in data if v not in (None, "")], files=files,
                    model=[(k, v) for k, v in model if v not in (None, "", [])], hyper=hyper,
                    train_metrics=train_metrics, problems=problems)


def _shape_note(files: Sequence[str], exc: Exception) -> str:
    return (f"Could not be shown: {' / '.join(files)} has an unexpected shape ({type(exc).__name__}: {exc}); "
            f"was it written by this version of the ml/ jobs?")


def _guarded(build: Callable[[], T], files: Sequence[str], fallback: T) -> T:
    """A section, or `fallback` with a note when its files hold something of an unexpected shape."""
    try:
        return build()
    except SHAPE_ERRORS as exc:
        return {**fallback, "missing": _shape_note(files, exc)} if isinstance(fallback, dict) else fallback  # type: ignore[return-value]


def _dig(document: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(document, Mapping):
            return None
        document = document.get(key)
    return document


def build_context(run: RunFiles, view: ExecutionView) -> dict[str, Any]:
    """Everything the template shows, as plain values (numbers already formatted, images as data URIs)."""
    config = run.get("dataset_config")
    summary = run.get("summary") or {}
    meta = run.model_meta or {}
    threshold = finite_number(_first(finite_number(summary.get("decision_threshold")), finite_number(_dig(run.get("bias"), "decision_threshold")),
                               finite_number(meta.get("threshold")), finite_number(_dig(config, "thresholds", "decision_threshold"))))
    dataset = _first(_dig(config, "name"), summary.get("dataset"), _dig(run.get("manifest"), "dataset"))
    algorithm = _first(summary.get("algorithm"), meta.get("algorithm"), view.input.get("Algorithm"))
    try:
        performance = _performance_sections(run, threshold, config)
    except SHAPE_ERRORS as exc:
        note = _section(_shape_note([SCORES_FILE, RUN_FILES["evaluation"]], exc))
        performance = {name: note for name in ("roc", "distribution", "calibration", "quality")}
    cause = view.cause
    show_error = view.status not in (None, "SUCCEEDED", "RUNNING") and view.error != GATE_REFUSED_ERROR
    if cause and len(cause) > MAX_CAUSE_CHARS:
        cause = cause[: MAX_CAUSE_CHARS - 1] + "…"
    return {
        "title": " · ".join(str(p) for p in (dataset, algorithm) if p) or "training run",
        "execution_name": view.name or run.run_dir.name,
        "status": view.status or "unknown",
        "start": view.start, "stop": view.stop, "duration": _duration(view.start, view.stop),
        "error": view.error if show_error else None,
        "cause": cause if show_error else None,
        "failed_state": view.failed_state,
        "verdict": _verdict(view),
        "cards": _guarded(lambda: _cards(run), [RUN_FILES["summary"], RUN_FILES["evaluation"]], []),
        "threshold": f"{threshold:g}" if threshold is not None else None,
        "gate": _guarded(lambda: _gate_section(view, config), ["the execution record"], EMPTY_GATE),
        **performance,
        "shap": _guarded(lambda: _shap_section(run), [RUN_FILES["explainability"]], {}),
        "fairness": _guarded(lambda: _fairness_section(run), [RUN_FILES["bias"]], {}),
        "profile": _guarded(lambda: _profile_section(run, config), [RUN_FILES["statistics"]], {}),
        "checks": _guarded(lambda: _checks_section(run), [RUN_FILES["validation_report"]], {}),
        "lineage": _guarded(lambda: _lineage_section(run, view, config),
                            [RUN_FILES["manifest"], MODEL_ARCHIVE_SHOWN, "the execution record"], {}),
        "unreadable": sorted(run.problems.items()),
        "run_dir": str(run.run_dir),
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "version": sagestep.__version__,
    }


def render_training_report(run_dir: Path, execution: Mapping[str, Any]) -> str:
    """The report's HTML for a run directory and its execution record."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {run_dir} does not exist; pass the local copy of the run's "
                                f"s3://<bucket>/runs/<execution>/ prefix")
    view = execution_view(execution)
    run = read_run(run_dir, view.section("Training").get("JobName"))
    if view.status == "RUNNING":
        run.why_absent = "the execution is still running"
    elif view.status and view.status != "SUCCEEDED":
        where = f" at “{view.failed_state}”" if view.failed_state else ""
        run.why_absent = f"the execution ended {view.status}{where}"
    return _template().render(**build_context(run, view))


def write_training_report(run_dir: Path, execution: dict, out_path: Path) -> Path:
    """Write the self-contained HTML report of the run in `run_dir` to `out_path`; returns `out_path`."""
    html = render_training_report(run_dir, execution)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(html, encoding="utf-8")
    return out_path


# --------------------------------------------------------------------------------------------- template

_ENV: Environment | None = None


def _template() -> Any:
    global _ENV
    if _ENV is None:
        _ENV = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return _ENV.from_string(TEMPLATE)


TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Training report — {{ title }} — {{ execution_name }}</title>
<style>
:root { --ink:#1f2937; --muted:#6b7280; --line:#e5e7eb; --bg:#f5f6f8; --card:#fff; --blue:#2563eb;
        --pass:#15803d; --pass-bg:#dcfce7; --fail:#b91c1c; --fail-bg:#fee2e2; --warn:#b45309; --warn-bg:#fef3c7; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
       font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif; }
main { max-width:1200px; margin:0 auto; padding:28px 24px 48px; }
header.top { background:var(--card); border:1px solid var(--line); border-radius:14px; padding:22px 26px;
             display:flex; justify-content:space-between; align-items:center; gap:24px; }
header.top h1 { margin:0 0 4px; font-size:22px; letter-spacing:-0.01em; }
.eyebrow { text-transform:uppercase; letter-spacing:.08em; font-size:11px; color:var(--muted); font-weight:600; }
.meta { color:var(--muted); font-size:13px; }
.meta b { color:var(--ink); font-weight:600; } .meta span { white-space:nowrap; }
.verdict { border-radius:12px; padding:14px 20px; min-width:260px; flex:none; text-align:center; }
.verdict .big { font-size:22px; font-weight:700; }
.verdict .small { font-size:13px; }
.verdict.pass { background:var(--pass-bg); color:var(--pass); }
.verdict.fail { background:var(--fail-bg); color:var(--fail); }
.verdict.error { background:var(--warn-bg); color:var(--warn); }
.verdict.pending { background:#e0e7ff; color:#3730a3; }
.banner { margin-top:14px; border-radius:10px; padding:12px 16px; background:var(--warn-bg); color:#78350f;
          border:1px solid #fcd34d; font-size:13px; }
.banner code { white-space:pre-wrap; word-break:break-word; }
.cards { display:grid; grid-template-columns:repeat(5,1fr); gap:14px; margin:18px 0 8px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:12px; padding:14px 18px; }
.card .label { font-size:12px; color:var(--muted); font-weight:600; text-transform:uppercase; letter-spacing:.06em; }
.card .value { font-size:30px; font-weight:700; letter-spacing:-0.02em; font-variant-numeric:tabular-nums; }
.card .note { font-size:12px; color:var(--muted); }
.card.pass { border-top:4px solid var(--pass); } .card.fail { border-top:4px solid var(--fail); }
.card .note.pass { color:var(--pass); } .card .note.fail { color:var(--fail); }
nav.toc { display:flex; flex-wrap:wrap; gap:6px; margin:14px 0 4px; }
nav.toc a { font-size:12.5px; color:var(--ink); text-decoration:none; background:var(--card);
            border:1px solid var(--line); border-radius:999px; padding:3px 11px; }
nav.toc a:hover { border-color:var(--blue); color:var(--blue); }
section { background:var(--card); border:1px solid var(--line); border-radius:14px; padding:20px 24px; margin-top:18px; }
section h2 { font-size:17px; margin:0 0 4px; }
section h3 { font-size:14px; margin:16px 0 6px; }
.lede { color:var(--muted); margin:0 0 12px; font-size:13px; }
.grid2 { display:grid; grid-template-columns:1fr 1fr; gap:18px; margin-top:18px; }
.grid2 > section { margin-top:0; }
figure { margin:0; } figure img { width:100%; height:auto; display:block; }
figcaption { color:var(--muted); font-size:12.5px; margin-top:6px; }
.missing { background:#f9fafb; border:1px dashed #d1d5db; color:#4b5563; border-radius:10px; padding:12px 14px;
           font-size:13px; }
.missing::before { content:"⚠ "; color:var(--warn); }
table { border-collapse:collapse; width:100%; font-size:13px; }
th { text-align:left; font-size:11.5px; text-transform:uppercase; letter-spacing:.05em; color:var(--muted);
     font-weight:600; border-bottom:1px solid var(--line); padding:7px 8px; white-space:nowrap; }
td { border-bottom:1px solid #f1f2f4; padding:7px 8px; vertical-align:middle; }
tbody tr:hover td { background:#fafbfc; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
.chip { display:inline-block; border-radius:999px; padding:1px 9px; font-size:12px; font-weight:600; white-space:nowrap; }
.chip.pass { background:var(--pass-bg); color:var(--pass); } .chip.fail { background:var(--fail-bg); color:var(--fail); }
.chip.muted { background:#f3f4f6; color:var(--muted); font-weight:500; }
td.di.pass { background:#f0fdf4; color:var(--pass); font-weight:700; }
td.di.fail { background:#fef2f2; color:var(--fail); font-weight:700; }
.mono { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:12px; word-break:break-all; }
.kv { display:grid; grid-template-columns:170px 1fr; gap:4px 16px; font-size:13px; }
.kv dt { color:var(--muted); } .kv dd { margin:0; }
.reasons { margin:10px 0 0; padding:0; list-style:none; }
.reasons li { border-left:4px solid var(--fail); background:#fef2f2; padding:9px 12px; margin:6px 0;
              border-radius:0 8px 8px 0; }
.reasons.ok li { border-color:var(--pass); background:#f0fdf4; }
.spark { display:block; } .spark rect { fill:#93c5fd; } .spark rect:hover { fill:var(--blue); }
.gauge { display:block; flex:none; }
.band { display:flex; align-items:center; gap:8px; }
.sub { color:var(--muted); font-size:12px; font-weight:400; }
.scroll { overflow-x:auto; }
table.wrap-head th { white-space:normal; vertical-align:bottom; }
td.attr { min-width:180px; }
.cats { font-size:12.5px; } .cats .share { color:var(--muted); }
.hp { display:grid; grid-template-columns:repeat(4,1fr); gap:4px 14px; font-size:12.5px; }
.hp div { display:flex; justify-content:space-between; border-bottom:1px dotted var(--line); padding:2px 0; }
.hp .k { color:var(--muted); } .hp .req .k { color:var(--ink); font-weight:600; }
.cm { width:auto; } .cm td, .cm th { text-align:center; padding:6px 14px; }
.cm td.hit { background:#eff6ff; font-weight:700; }
details summary { cursor:pointer; color:var(--blue); font-size:13px; margin-top:10px; }
footer { color:var(--muted); font-size:12px; margin-top:26px; text-align:center; }
@media (max-width: 900px) { .cards { grid-template-columns:repeat(2,1fr); } .grid2 { grid-template-columns:1fr; }
  header.top { flex-direction:column; align-items:flex-start; } .hp { grid-template-columns:1fr 1fr; } }
@media print { body { background:white; } section, .card, header.top { break-inside:avoid; } nav.toc { display:none; } }
</style>
</head>
<body>
<main>
<header class="top">
  <div>
    <div class="eyebrow">sagestep training report</div>
    <h1>{{ title }}</h1>
    <div class="meta"><span>Execution <b>{{ execution_name }}</b></span> · <span>status <b>{{ status }}</b></span>
      {% if start %} · <span>started {{ start }}</span>{% endif %}{% if duration %} · <span>took {{ duration }}</span>{% endif %}
      {% if threshold %} · <span>decision threshold <b>{{ threshold }}</b></span>{% endif %}</div>
  </div>
  <div class="verdict {{ verdict.kind }}">
    <div class="big">{{ verdict.title }}</div>
    <div class="small">{{ verdict.detail }}</div>
  </div>
</header>
{% if error or cause %}
<div class="banner"><b>{{ error or "Error" }}</b>{% if failed_state %} in “{{ failed_state }}”{% endif %}{% if cause %}: <code>{{ cause }}</code>{% endif %}</div>
{% endif %}

<div class="cards">
{% for c in cards %}
  <div class="card {{ c.state }}"><div class="label">{{ c.label }}</div><div class="value">{{ c.value }}</div>
    <div class="note {{ c.state }}">{{ c.note }}</div></div>
{% endfor %}
</div>

<nav class="toc">
  <a href="#gate">Gate decision</a><a href="#roc">ROC curve</a><a href="#distribution">Score distributions</a>
  <a href="#calibration">Calibration</a><a href="#shap">SHAP importance</a><a href="#quality">Metrics at threshold</a>
  <a href="#fairness">Fairness</a><a href="#profile">Data profile</a><a href="#checks">Data checks</a><a href="#lineage">Lineage</a>
</nav>

{% if unreadable %}
<div class="banner">Some files of the run could not be read; their sections say so.
  <ul>{% for path, problem in unreadable %}<li><span class="mono">{{ path }}</span> {{ problem }}</li>{% endfor %}</ul></div>
{% endif %}

<section id="gate">
  <h2>Gate decision</h2>
  {% if gate.missing %}
  <p class="missing">{{ gate.missing }}</p>
  {% else %}
  <p class="lede">{% if gate.passed %}The candidate passed every check of the quality gate{% if gate.registered %} and was registered for manual approval{% endif %}.{% else %}The quality gate refused the candidate for {{ gate.reasons|length }} reason{{ "s" if gate.reasons|length != 1 }}:{% endif %}</p>
  {% if gate.reasons %}
  <ul class="reasons">{% for r in gate.reasons %}<li>{{ r }}</li>{% endfor %}</ul>
  {% elif gate.passed %}
  <ul class="reasons ok"><li>No failing check.</li></ul>
  {% endif %}
  {% if gate.checks %}
  <h3>Every check</h3>
  <table><thead><tr><th>Check</th><th>Result</th><th>Detail</th></tr></thead><tbody>
  {% for c in gate.checks %}<tr><td>{{ c.name }}</td><td><span class="chip {{ 'pass' if c.passed else 'fail' }}">{{ "pass" if c.passed else "fail" }}</span></td><td>{{ c.detail }}</td></tr>{% endfor %}
  </tbody></table>
  {% endif %}
  <dl class="kv" style="margin-top:14px">
    <dt>Champion compared</dt><dd class="mono">{{ gate.champion or "none (no approved model in the group)" }}</dd>
    {% if gate.registered %}<dt>Registered model package</dt><dd class="mono">{{ gate.registered }}</dd>{% endif %}
  </dl>
  {% endif %}
  {% if gate.criteria %}
  <h3>What the gate checks</h3>
  <table><tbody>{% for name, rule in gate.criteria %}<tr><td style="width:200px">{{ name }}</td><td>{{ rule }}</td></tr>{% endfor %}</tbody></table>
  {% endif %}
  {% if gate.metadata %}
  <details><summary>Registry metadata ({{ gate.metadata|length }} entries)</summary>
  <table><tbody>{% for k, v in gate.metadata %}<tr><td>{{ k }}</td><td class="mono">{{ v }}</td></tr>{% endfor %}</tbody></table>
  </details>
  {% endif %}
</section>

<div class="grid2">
<section id="roc">
  <h2>ROC curve</h2>
  <p class="lede">True positive rate against false positive rate over every threshold, on the test split.</p>
  {% if roc.missing %}<p class="missing">{{ roc.missing }}</p>{% else %}
  <figure><img alt="ROC curve" src="{{ roc.image }}"><figcaption>The red point is the decision threshold; source {{ roc.source }}.</figcaption></figure>{% endif %}
</section>
<section id="distribution">
  <h2>Score distributions</h2>
  <p class="lede">Scores by true class; applicants at or above the threshold are declined.</p>
  {% if distribution.missing %}<p class="missing">{{ distribution.missing }}</p>{% else %}
  <figure><img alt="Score distributions by true class" src="{{ distribution.image }}"><figcaption>Densities of the test scores; the shaded area is declined.</figcaption></figure>{% endif %}
</section>
<section id="calibration">
  <h2>Calibration</h2>
  <p class="lede">Observed positive rate against the mean score, by score decile.</p>
  {% if calibration.missing %}<p class="missing">{{ calibration.missing }}</p>{% else %}
  <figure><img alt="Calibration by decile" src="{{ calibration.image }}"><figcaption>Brier score {{ calibration.brier }} · expected calibration error {{ calibration.ece }}. Points on the diagonal are well calibrated.</figcaption></figure>{% endif %}
</section>
<section id="shap">
  <h2>SHAP importance</h2>
  <p class="lede">Mean |SHAP| per feature: how far each feature moves a score, on average.</p>
  {% if shap.missing %}<p class="missing">{{ shap.missing }}</p>{% else %}
  <figure><img alt="SHAP importance" src="{{ shap.image }}"><figcaption>Top {{ shap.shown }} of {{ shap.n_features }} features{% if shap.n_rows %}, {{ shap.n_rows }} test rows{% endif %} ({{ shap.method }}); labels are each feature's share of the total.</figcaption></figure>{% endif %}
</section>
</div>

<section id="quality">
  <h2>Metrics at the decision threshold</h2>
  {% if quality.missing %}<p class="missing">{{ quality.missing }}</p>{% else %}
  <p class="lede">Model Monitor model-quality statistics{% if threshold %} at threshold {{ threshold }}{% endif %}; ± is the spread over 5 random 80% subsamples{% if quality.has_constraints %}; constraints are what monitoring will hold the model to{% endif %}.</p>
  <div style="display:flex; gap:32px; align-items:flex-start; flex-wrap:wrap">
  <table class="cm"><thead><tr><th></th><th>predicted 0</th><th>predicted 1</th></tr></thead><tbody>
    <tr><th>actual 0</th><td class="hit">{{ quality.cm["00"] }}</td><td>{{ quality.cm["01"] }}</td></tr>
    <tr><th>actual 1</th><td>{{ quality.cm["10"] }}</td><td class="hit">{{ quality.cm["11"] }}</td></tr>
  </tbody></table>
  <table style="flex:1; min-width:420px"><thead><tr><th>Metric</th><th class="num">Value</th><th class="num">±</th><th class="num">Constant classifier</th><th class="num">Constraint</th></tr></thead><tbody>
  {% for r in quality.rows %}<tr><td>{{ r.name }}</td><td class="num"><b>{{ r.value }}</b></td><td class="num">{{ r.std }}</td><td class="num">{{ r.constant }}</td><td class="num">{{ r.constraint }}</td></tr>{% endfor %}
  </tbody></table>
  </div>
  {% endif %}
</section>

<section id="fairness">
  <h2>Fairness</h2>
  {% if fairness.missing %}<p class="missing">{{ fairness.missing }}</p>{% else %}
  <p class="lede">Favourable outcome: {{ fairness.outcome }} (overall approval {{ fairness.approval }}). Disparate impact DI = approval rate of the unprivileged group ÷ that of the privileged group must lie in <b>[{{ fairness.low }}, {{ fairness.high }}]</b>. SPD = difference of approval rates, EOD = difference of approval rates among good applicants.</p>
  <div class="scroll"><table class="wrap-head"><thead><tr><th>Attribute</th><th class="num">Rows priv. / unpriv.</th>
    <th class="num">Approval priv. / unpriv.</th><th class="num">Bad rate priv. / unpriv.</th>
    <th class="num">DI</th><th>Band [{{ fairness.low }}, {{ fairness.high }}]</th><th class="num">SPD</th><th class="num">EOD</th></tr></thead><tbody>
  {% for r in fairness.rows %}<tr><td class="attr"><b>{{ r.name }}</b><div class="sub">privileged: {{ r.group }}</div></td>
    <td class="num">{{ r.n_priv }} / {{ r.n_unpriv }}{% if r.n_missing %}<div class="sub">{{ r.n_missing }} missing, excluded</div>{% endif %}</td>
    <td class="num">{{ r.rate_priv }} / {{ r.rate_unpriv }}</td><td class="num">{{ r.bad_priv }} / {{ r.bad_unpriv }}</td>
    <td class="num di {{ 'pass' if r.passed else 'fail' }}">{{ r.di }}</td>
    <td><div class="band">{{ r.gauge }}<span class="chip {{ 'pass' if r.passed else 'fail' }}">{{ "within" if r.passed else "outside" }}</span></div></td>
    <td class="num">{{ r.spd }}</td><td class="num">{{ r.eod }}</td></tr>{% endfor %}
  </tbody></table></div>
  {% endif %}
</section>

<section id="profile">
  <h2>Data profile</h2>
  {% if profile.missing %}<p class="missing">{{ profile.missing }}</p>{% else %}
  <p class="lede">The training split as profiled for monitoring ({{ profile.n_rows }} rows, {{ profile.source }}); the histograms come from the KLL sketch buckets.</p>
  <table><thead><tr><th>Feature</th><th>Role</th><th>Type</th><th class="num">Missing</th><th class="num">Mean</th><th class="num">Std</th><th class="num">Min</th><th class="num">Max</th><th>Distribution</th></tr></thead><tbody>
  {% for r in profile.rows %}<tr><td><b>{{ r.name }}</b></td><td>{% if r.role %}<span class="chip muted">{{ r.role }}</span>{% endif %}</td><td>{{ r.type }}</td>
    <td class="num">{% if r.missing_any %}<span style="color:var(--warn); font-weight:600">{{ r.missing }}</span>{% else %}{{ r.missing }}{% endif %}</td>
    {% if r.numeric %}<td class="num">{{ r.mean }}</td><td class="num">{{ r.std }}</td><td class="num">{{ r.min }}</td><td class="num">{{ r.max }}</td><td>{{ r.spark }}</td>
    {% else %}<td colspan="4" class="cats">{{ r.distinct }} distinct</td><td class="cats">{% for c in r.top %}{{ c.value }} <span class="share">{{ c.share }}</span>{{ " · " if not loop.last }}{% endfor %}{% if r.more %} <span class="share">(+{{ r.more }} more)</span>{% endif %}</td>{% endif %}</tr>{% endfor %}
  </tbody></table>
  {% endif %}
</section>

<section id="checks">
  <h2>Data checks</h2>
  {% if checks.missing %}<p class="missing">{{ checks.missing }}</p>{% else %}
  <p class="lede">{% if checks.passed %}All {{ checks.checks|length }} checks passed{% else %}{{ checks.n_failed }} of {{ checks.checks|length }} checks failed{% endif %} on {{ checks.n_rows }} raw rows from {{ checks.files|join(", ") or "no file" }}.</p>
  <table><thead><tr><th>Check</th><th>Result</th><th>Detail</th></tr></thead><tbody>
  {% for c in checks.checks %}<tr><td>{{ c.name }}</td><td><span class="chip {{ 'pass' if c.passed else 'fail' }}">{{ "pass" if c.passed else "fail" }}</span></td>
    <td>{{ c.detail }}{% if c.fix %}<br><span style="color:var(--muted)">Fix: {{ c.fix }}</span>{% endif %}</td></tr>{% endfor %}
  </tbody></table>
  {% endif %}
</section>

<section id="lineage">
  <h2>Lineage</h2>
  <p class="lede">Where this model came from: the execution, the exact data and code, and the settings.</p>
  {% if lineage.missing %}<p class="missing">{{ lineage.missing }}</p>{% else %}
  {% for p in lineage.problems %}<p class="missing">{{ p }}</p>{% endfor %}
  <div class="grid2" style="margin-top:0">
    <div><h3>Execution</h3><dl class="kv">{% for k, v in lineage.execution %}<dt>{{ k }}</dt><dd class="mono">{{ v }}</dd>{% endfor %}</dl>
      {% if not lineage.execution %}<p class="missing">No execution record was given.</p>{% endif %}</div>
    <div><h3>Model and code</h3><dl class="kv">{% for k, v in lineage.model %}<dt>{{ k }}</dt><dd class="mono">{{ v }}</dd>{% endfor %}</dl></div>
  </div>
  <h3>Data</h3>
  <dl class="kv">{% for k, v in lineage.data %}<dt>{{ k }}</dt><dd class="mono">{{ v }}</dd>{% endfor %}</dl>
  {% if lineage.files %}
  <table style="margin-top:10px"><thead><tr><th>File</th><th>Path</th><th class="num">Rows</th><th>SHA-256</th></tr></thead><tbody>
  {% for f in lineage.files %}<tr><td>{{ f.role }}</td><td class="mono">{{ f.path }}</td><td class="num">{{ "{:,}".format(f.rows) if f.rows is not none else "" }}</td><td class="mono">{{ f.sha256 }}</td></tr>{% endfor %}
  </tbody></table>
  {% endif %}
  {% if lineage.hyper %}
  <h3>Hyperparameters <span style="font-weight:400; color:var(--muted); font-size:12.5px">(bold: set by the run; others: defaults)</span></h3>
  <div class="hp">{% for h in lineage.hyper %}<div class="{{ 'req' if h.requested }}"><span class="k">{{ h.name }}</span><span class="mono">{{ h.value }}</span></div>{% endfor %}</div>
  {% endif %}
  {% if lineage.train_metrics %}
  <h3>Training metrics</h3>
  <div class="hp">{% for k, v in lineage.train_metrics %}<div><span class="k">{{ k }}</span><span class="mono">{{ v }}</span></div>{% endfor %}</div>
  {% endif %}
  {% endif %}
</section>

<footer>Generated by sagestep {{ version }} on {{ generated }} from <span class="mono">{{ run_dir }}</span></footer>
</main>
</body>
</html>
"""
