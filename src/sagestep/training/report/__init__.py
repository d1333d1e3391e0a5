"""The HTML training report: one self-contained file a person would rather look at than read.

    write_training_report(run_dir, execution, out_path)
    write_run_report(run_dir, gate_record, out_dir)     # the training pipeline's report step (ml/report.py)

`run_dir` is a local copy of the run's S3 prefix `runs/<execution>/` (preprocess/, train/, evaluation/,
baseline/, gate/); `execution` is the execution record (`ExecutionRecord.to_dict()`: `{"execution": {...}, "history":
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

from sagestep.training.report.data import build_context, execution_view, read_run

__all__ = ["render_training_report", "write_training_report", "write_run_report", "run_summary",
           "execution_from_gate_record"]

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


def execution_from_gate_record(gate_record: Mapping[str, Any]) -> dict[str, Any]:
    """An execution record as the report reads it, from the gate's gate.json: the report step runs inside the
    execution (before registration), so it has no history to read; status RUNNING says so honestly."""
    import json

    gate = dict(gate_record.get("Gate") or {})
    arn = str(gate_record.get("ExecutionArn") or "")
    hyper = dict(gate_record.get("HyperParameters") or {})
    algorithm = str(hyper.get("algorithm", "")).strip('"') or None
    state = {
        "Gate": gate,
        "Run": {"OutputS3Uri": gate_record.get("RunS3Uri")},
        "Training": {"JobName": gate_record.get("TrainingJobName"), "ModelDataUrl": gate_record.get("ModelDataUrl"),
                     "HyperParameters": hyper},
        "DataS3Uri": gate_record.get("DataS3Uri"),
        "DatasetConfigS3Uri": gate_record.get("DatasetConfigS3Uri"),
        "Algorithm": algorithm,
        **({"Tuning": gate_record["Tuning"]} if isinstance(gate_record.get("Tuning"), Mapping) else {}),
    }
    execution = {
        "executionArn": arn or None,
        "name": arn.rsplit(":", 1)[-1] if arn else None,
        "stateMachineArn": arn.replace(":execution:", ":stateMachine:").rsplit(":", 1)[0] if ":execution:" in arn else None,
        "status": "RUNNING",
        "input": json.dumps({"DataS3Uri": state["DataS3Uri"], "DatasetConfigS3Uri": state["DatasetConfigS3Uri"],
                             "Algorithm": algorithm}),
        "output": json.dumps(state),
    }
    return {"execution": execution, "history": []}


def run_summary(run_dir: Path, gate_record: Mapping[str, Any]) -> dict[str, Any]:
    """summary.json beside report.html: the verdict, the key numbers and where things are, for people and tools
    (`sagestep local run` prints it)."""
    run = read_run(Path(run_dir), gate_record.get("TrainingJobName"))
    gate = gate_record.get("Gate") or {}
    summary = run.get("summary") or {}
    report = run.get("validation_report") or {}
    cleaning = report.get("cleaning") or {}
    outputs = (run.get("manifest") or {}).get("outputs") or {}
    metrics = {k: summary.get(k) for k in ("auc", "ks", "gini", "accuracy", "precision", "recall", "f1", "brier",
                                           "rmse", "mae", "r2", "mape", "naive_rmse", "error_ratio_to_naive")
               if summary.get(k) is not None}
    tuning = gate_record.get("Tuning") if isinstance(gate_record.get("Tuning"), Mapping) else None
    return {
        "version": 1,
        "execution_arn": gate_record.get("ExecutionArn"),
        "dataset": summary.get("dataset") or report.get("dataset"),
        "model_line": gate.get("ModelLine"),
        "model_package_group": gate.get("ModelPackageGroupName"),
        "algorithm": summary.get("algorithm"),
        "gate": {"passed": bool(gate.get("Passed")), "reasons": list(gate.get("Reasons") or [])},
        "metrics": metrics,
        "decision_threshold": summary.get("decision_threshold"),
        "rows": {"read": report.get("n_rows"), "used": report.get("n_rows_used"),
                 "unlabeled_dropped": cleaning.get("dropped_unlabeled_rows", 0),
                 **{name: (outputs.get(name) or {}).get("rows") for name in ("train", "validation", "test")}},
        "report": gate.get("ReportS3Uri"),
        "data": gate_record.get("DataS3Uri"),
        "dataset_config": gate_record.get("DatasetConfigS3Uri"),
        **({"tuning": {"tuning_job_arn": tuning.get("TuningJobArn"), "trials": len(tuning.get("Trials") or []),
                       "best_training_job": gate_record.get("TrainingJobName"),
                       "hyperparameters": gate_record.get("HyperParameters")}} if tuning else {}),
    }


def write_run_report(run_dir: Path, gate_record: Mapping[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """report.html and summary.json of a run whose quality gate has decided (gate/gate.json), into `out_dir`."""
    import json

    out_dir = Path(out_dir)
    html = write_training_report(run_dir, execution_from_gate_record(gate_record), out_dir / "report.html")
    summary = out_dir / "summary.json"
    summary.write_text(json.dumps(run_summary(run_dir, gate_record), indent=2, default=str) + "\n", encoding="utf-8")
    return html, summary


@functools.cache
def _template() -> Template:
    env = Environment(loader=FileSystemLoader(Path(__file__).parent), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    return env.get_template(TEMPLATE_FILE)
