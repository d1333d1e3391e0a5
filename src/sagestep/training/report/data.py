"""What the training report shows, as plain data: the files of a run directory, the execution record, and the
template context built from both (numbers already formatted, plots as data URIs from `figures`).

A file that is missing or unreadable, or holds something of an unexpected shape, turns its section into a note
saying which file and why; nothing here raises for a bad run.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import tarfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

import sagestep
from sagestep.training.report import figures
from sagestep.training.report.formatting import fmt, fmt_signed, fmt_stat, pct
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
MAX_CAUSE_CHARS = 1500


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



def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


# --------------------------------------------------------------------------------------------- curves from the scores


def roc_points(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(fpr, tpr, auc) over every distinct score, ties handled as one step; numpy only (no sklearn import)."""
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s_sorted)), y.size - 1]
    tps = np.cumsum(y_sorted)[last]
    fps = last + 1 - tps
    tpr = np.r_[0.0, tps / tps[-1]]
    fpr = np.r_[0.0, fps / fps[-1]]
    trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy 2 renamed it; the job image has numpy 1.26
    return fpr, tpr, float(trapezoid(tpr, fpr))


def _labels(y: np.ndarray, s: np.ndarray, threshold: float) -> tuple[float, float]:
    positive, negative = y == 1, y == 0
    tpr = float(np.mean(s[positive] >= threshold)) if positive.any() else math.nan
    fpr = float(np.mean(s[negative] >= threshold)) if negative.any() else math.nan
    return tpr, fpr


# --------------------------------------------------------------------------------------------- sections


# What a document of an unexpected shape raises while a section is built.
SHAPE_ERRORS = (AttributeError, KeyError, TypeError, ValueError, IndexError)
T = TypeVar("T")
EMPTY_GATE: dict[str, Any] = {"criteria": [], "passed": None, "reasons": [], "checks": [], "champion": None,
                              "registered": None, "metadata": [], "card": None}


def _section(missing: str | None = None, **content: Any) -> dict[str, Any]:
    return {"missing": missing, **content}


def _gate_section(view: ExecutionView, config: Mapping[str, Any] | None) -> dict[str, Any]:
    gate = view.gate
    thresholds = (config or {}).get("thresholds") or {}
    criteria = []
    if thresholds and "naive_lag_days" in thresholds:
        criteria = [
            ("Naive forecast", f"test RMSE at most {fmt_stat(thresholds.get('max_error_ratio_to_naive'))} × the naive "
                               f"seasonal forecast's (the target {thresholds.get('naive_lag_days')} days earlier)"),
            ("Champion", f"candidate RMSE at most the approved champion's × (1 + {fmt_stat(thresholds.get('champion_margin'))})"),
            ("Data checks", "every check of the validation report passed"),
        ]
    elif thresholds:
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
        card=_model_card(gate.get("ModelCard")),
    )


def _model_card(card: Any) -> dict[str, Any] | None:
    """The model card the pipeline creates for the package (SageMaker Model Card content), as the report shows it."""
    if not isinstance(card, Mapping):
        return None
    overview, uses = card.get("model_overview") or {}, card.get("intended_uses") or {}
    evaluation = (card.get("evaluation_details") or [{}])[0]
    groups = [{"name": str(g.get("name")), "metrics": [(str(m.get("name")), fmt_stat(m.get("value")))
                                                       for m in g.get("metric_data") or []]}
              for g in evaluation.get("metric_groups") or []]
    job = (card.get("training_details") or {}).get("training_job_details") or {}
    return {"description": overview.get("model_description"), "problem": overview.get("problem_type"),
            "purpose": uses.get("purpose_of_model"), "intended": uses.get("intended_uses"),
            "risk": uses.get("risk_rating"), "risk_why": uses.get("explanations_for_risk_rating"),
            "training_job": job.get("training_arn"), "groups": groups,
            "caveats": (card.get("additional_information") or {}).get("caveats_and_recommendations")}


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
        image = figures.roc_plot(fpr, tpr, auc, point, threshold, (float(fpr[k]), float(fpr[k]), float(tpr[k])))
        out["roc"] = _section(None, image=image, source=SCORES_FILE)
    elif isinstance(metrics.get("receiver_operating_characteristic_curve"), Mapping):
        curve = metrics["receiver_operating_characteristic_curve"]
        auc = finite_number((metrics.get("auc") or {}).get("value"))
        tpr_t = finite_number((metrics.get("true_positive_rate") or {}).get("value"))
        fpr_t = finite_number((metrics.get("false_positive_rate") or {}).get("value"))
        point = (tpr_t, fpr_t) if tpr_t is not None and fpr_t is not None else None
        image = figures.roc_plot(curve.get("false_positive_rates", []), curve.get("true_positive_rates", []), auc,
                                 point, threshold, None)
        out["roc"] = _section(None, image=image, source=f"{RUN_FILES['evaluation']} (downsampled curve; "
                                                        f"{SCORES_FILE} unavailable)")
    elif y is not None and not both_classes:
        out["roc"] = _section(f"Not available: {SCORES_FILE} holds a single class, so there is no ROC curve.")
    else:
        out["roc"] = _section(run.missing(SCORES_FILE, RUN_FILES["evaluation"]))

    # Score distributions by true class.
    if y is not None and s is not None:
        positive_name, negative_name = _class_names(config)
        image = figures.distribution_plot(y, s, threshold, positive_name, negative_name)
        out["distribution"] = _section(None, image=image)
    else:
        out["distribution"] = _section(run.missing(SCORES_FILE))

    # Calibration: the table evaluate.py stored (score deciles), else computed from the scores.
    table = evaluation.get("calibration")
    if not (isinstance(table, Mapping) and table.get("bins")) and y is not None and s is not None:
        from sagestep.training.metrics import calibration  # imports scikit-learn: only when evaluation.json lacks the table

        table = calibration(y, s, CALIBRATION_BINS)
    if isinstance(table, Mapping) and table.get("bins"):
        out["calibration"] = _section(None, image=figures.calibration_plot(table["bins"]),
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
    return _section(None, image=figures.shap_plot(top), n_features=len(features), shown=len(top),
                    n_rows=doc.get("n_rows"), method=doc.get("method", "tree_shap"),
                    algorithm=doc.get("algorithm"))


def _fairness_section(run: RunFiles) -> dict[str, Any]:
    bias = run.get("bias")
    if not isinstance(bias, Mapping) or not isinstance(bias.get("attributes"), list):
        return _section(run.missing(RUN_FILES["bias"]))
    if bias.get("problem_type") == "Regression":
        return _section(f"Not applicable: {bias.get('note', 'a regressor makes no decisions about people')}.")
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
            "passed": passed, "gauge": figures.di_gauge_svg(di, low, high),
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
                       min=fmt_stat(block.get("min")), max=fmt_stat(block.get("max")),
                       spark=figures.sparkline_svg(buckets))
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
                    n_failed=sum(1 for c in checks if not c["passed"]),
                    cleaning=_cleaning_lines(report.get("cleaning")))


def _cleaning_lines(cleaning: Any) -> list[str]:
    """What the config's cleaning did, one line per transform (none when the config has no cleaning)."""
    if not isinstance(cleaning, Mapping):
        return []
    lines = []
    unlabeled, dropped = cleaning.get("unlabeled_rows") or 0, cleaning.get("dropped_unlabeled_rows") or 0
    if dropped:
        lines.append(f"{dropped:,} of {cleaning.get('rows_in', 0):,} rows had no label and were dropped "
                     f"({cleaning.get('rows_out', 0):,} used)")
    elif unlabeled:
        lines.append(f"{unlabeled:,} rows have no label")
    if cleaning.get("dropped_columns"):
        lines.append(f"columns dropped: {', '.join(cleaning['dropped_columns'])}")
    if cleaning.get("parsed_numbers"):
        lines.append(f"numbers read from text (currency, separators): {', '.join(cleaning['parsed_numbers'])}")
    for column, (low, high) in (cleaning.get("date_ranges") or {}).items():
        lines.append(f"dates read with their configured format: {column} spans {low} to {high}")
    for cap in cleaning.get("category_caps") or []:
        if isinstance(cap, Mapping):
            lines.append(f"{cap.get('column')}: {cap.get('distinct')} categories in training capped to the "
                         f"{cap.get('kept')} most frequent + (other), {pct(cap.get('other_share'))} of rows")
    return lines


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


def _regression_sections(run: RunFiles, config: Mapping[str, Any] | None) -> dict[str, Any]:
    """A regressor's performance: predicted vs actual, residuals over time (beside the naive seasonal forecast's),
    and the Model Monitor regression metrics with their constraints."""
    evaluation = run.get("evaluation") or {}
    metrics = evaluation.get("regression_metrics") or {}
    extras = evaluation.get("regression_extras") or {}
    constraints = (run.get("constraints") or {}).get("regression_constraints") or {}
    target = str((config or {}).get("target") or "target")
    out: dict[str, Any] = {}
    scores = run.scores
    if scores is not None:
        y, p = scores["label"].to_numpy(dtype=np.float64), scores["score"].to_numpy(dtype=np.float64)
        out["actual"] = _section(None, image=figures.predicted_vs_actual_plot(y, p, target), source=SCORES_FILE)
        if "time" in scores.columns:
            naive = scores["naive"].to_numpy(dtype=np.float64) if "naive" in scores.columns else None
            order = np.argsort(pd.to_datetime(scores["time"], errors="coerce").to_numpy(), kind="stable")
            image = figures.residuals_over_time_plot(scores["time"].to_numpy()[order], (y - p)[order],
                                                     (y - naive)[order] if naive is not None else None)
            out["residuals"] = _section(None, image=image)
        else:
            out["residuals"] = _section("Not available: the dataset has no event_time_column to order rows by.")
    else:
        out["actual"] = out["residuals"] = _section(run.missing(SCORES_FILE))
    rows = []
    for name in ("mae", "mse", "rmse", "r2"):
        entry = metrics.get(name)
        if not isinstance(entry, Mapping):
            continue
        constraint = constraints.get(name) or {}
        op = {"LessThanThreshold": "≥", "GreaterThanThreshold": "≤"}.get(constraint.get("comparison_operator"), "")
        rows.append({"name": name, "value": fmt(entry.get("value")), "std": fmt(entry.get("standard_deviation")),
                     "constraint": f"{op} {fmt(constraint.get('threshold'))}" if constraint else ""})
    naive = {"rmse": fmt(extras.get("naive_rmse")), "mae": fmt(extras.get("naive_mae")),
             "ratio": fmt(extras.get("error_ratio_to_naive"), 3), "rows": extras.get("naive_rows"),
             "mape": pct(extras.get("mape")) if extras.get("mape") is not None else "—"}
    out["metrics"] = _section(None if rows else run.missing(RUN_FILES["evaluation"]), rows=rows, naive=naive)
    return out


def _regression_cards(run: RunFiles) -> list[dict[str, Any]]:
    summary = run.get("summary") or {}
    ratio, limit = finite_number(summary.get("error_ratio_to_naive")), finite_number(summary.get("max_error_ratio_to_naive"))
    state = "" if ratio is None or limit is None else ("pass" if ratio <= limit else "fail")
    return [
        {"label": "Test RMSE", "value": fmt(finite_number(summary.get("rmse")), 3), "note": "root mean squared error", "state": ""},
        {"label": "vs naive", "value": fmt(ratio, 3), "state": state,
         "note": f"RMSE ÷ naive seasonal forecast's (max {fmt(limit, 2)})"},
        {"label": "MAE", "value": fmt(finite_number(summary.get("mae")), 3), "note": "mean absolute error", "state": ""},
        {"label": "R²", "value": fmt(finite_number(summary.get("r2")), 3), "note": "share of variance explained", "state": ""},
        {"label": "Test rows", "value": f"{int(summary['n_test']):,}" if finite_number(summary.get("n_test")) else "—",
         "note": "the newest rows (time-ordered split)", "state": ""},
    ]


def _tuning_section(view: ExecutionView) -> dict[str, Any] | None:
    """A tuned run's trials (gate.json's Tuning): objective per trial, the best one, the chosen hyperparameters."""
    tuning = view.section("Tuning")
    if not tuning:
        return None
    trials = [t for t in tuning.get("Trials") or [] if isinstance(t, Mapping)]
    best = view.section("Training").get("JobName")
    metric = next((t.get("MetricName") for t in trials if t.get("MetricName")), "objective")
    return _section(
        None, arn=tuning.get("TuningJobArn"), image=figures.tuning_trials_plot(trials, str(metric), best) if trials else None,
        best=best, metric=metric,
        trials=[{"name": t.get("TrainingJobName"), "status": t.get("Status"), "objective": fmt(t.get("Objective"), 4),
                 "best": t.get("TrainingJobName") == best,
                 "values": " ".join(f"{k}={v}" for k, v in sorted((t.get("TunedHyperParameters") or {}).items())),
                 "failure": t.get("FailureReason") or ""} for t in trials])


def build_context(run: RunFiles, view: ExecutionView) -> dict[str, Any]:
    """Everything the template shows, as plain values (numbers already formatted, images as data URIs)."""
    config = run.get("dataset_config")
    summary = run.get("summary") or {}
    meta = run.model_meta or {}
    threshold = finite_number(_first(finite_number(summary.get("decision_threshold")), finite_number(_dig(run.get("bias"), "decision_threshold")),
                               finite_number(meta.get("threshold")), finite_number(_dig(config, "thresholds", "decision_threshold"))))
    dataset = _first(_dig(config, "name"), summary.get("dataset"), _dig(run.get("manifest"), "dataset"))
    algorithm = _first(summary.get("algorithm"), meta.get("algorithm"), view.input.get("Algorithm"))
    regression = _dig(config, "problem_type") == "Regression"
    try:
        performance = {} if regression else _performance_sections(run, threshold, config)
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
        "cards": _guarded(lambda: _regression_cards(run) if regression else _cards(run),
                          [RUN_FILES["summary"], RUN_FILES["evaluation"]], []),
        "regression": _guarded(lambda: _regression_sections(run, config), [SCORES_FILE, RUN_FILES["evaluation"]],
                               {}) if regression else None,
        "tuning": _guarded(lambda: _tuning_section(view), ["gate/gate.json"], None),
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
