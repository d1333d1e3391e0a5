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

Where things are:
    data.py                   what the report shows: reading the run directory and the execution record, and
                              building the template context as plain values
    figures.py                the PNG plots and inline SVGs
    formatting.py             how numbers are written ("—" when missing)
    training_report.html.j2   the page: layout, CSS and wording
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template

from sagestep.report.data import build_context, execution_view, read_run

__all__ = ["render_training_report", "write_training_report"]

TEMPLATE_FILE = "training_report.html.j2"  # beside this file; shipped as package data (pyproject.toml)


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


@functools.cache
def _template() -> Template:
    env = Environment(loader=FileSystemLoader(Path(__file__).parent), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    return env.get_template(TEMPLATE_FILE)
