"""`sagestep baseline`, `sagestep monitor data-quality|model-quality|bias` and `sagestep merge-ground-truth`.

Violations are results, not errors: `monitor data-quality` exits 0 when it finds some. Bad input (missing files,
unreadable data, bad offsets) raises UserError: one line, exit code 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from sagestep.cli import UserError

# argparse takes "-PT3H" for an option; let the merge parser read duration-shaped values as arguments.
_NEGATIVE_NUMBER_OR_DURATION = re.compile(r"^-\d+$|^-\d*\.\d+$|^-P[^-\s]*$", re.IGNORECASE)


def _input_errors() -> tuple[type[Exception], ...]:
    """The monitoring library's bad-input errors (imported here: the library needs numpy and pandas)."""
    from sagestep.monitoring.baseline import BaselineInputError
    from sagestep.monitoring.constraints import ConstraintsError
    from sagestep.monitoring.data_quality import StatisticsFormatError
    from sagestep.monitoring.files import DocumentError
    from sagestep.monitoring.kll import SketchFormatError
    from sagestep.monitoring.merge import MergeInputError
    from sagestep.monitoring.readers import DataInputError

    return (DataInputError, DocumentError, StatisticsFormatError, ConstraintsError, SketchFormatError,
            BaselineInputError, MergeInputError)


def register(subparsers: argparse._SubParsersAction) -> None:
    baseline = subparsers.add_parser(
        "baseline",
        help="baseline statistics.json and constraints.json from training data",
        description="Profile a dataset (CSV, Parquet or capture JSONL; file or directory) and write Model Monitor "
        "statistics.json and suggested constraints.json.",
    )
    baseline.add_argument("--input", required=True, type=Path, help="the baseline data, e.g. the training CSV")
    baseline.add_argument("--output", required=True, type=Path, help="directory for statistics.json and constraints.json")
    baseline.add_argument(
        "--dataset-config",
        type=Path,
        help="dataset config (e.g. ml/config/credit_data.yaml): clean the input with its cleaning and profile only its "
        "features, with its types, in its order; the config is written beside the baseline for the monitors",
    )
    baseline.set_defaults(func=run_baseline)

    monitor = subparsers.add_parser("monitor", help="monitoring jobs (data quality, model quality, bias)")
    jobs = monitor.add_subparsers(dest="monitor_command", required=True)
    quality = jobs.add_parser(
        "data-quality",
        help="check current data against a baseline; writes statistics, violations, drift report and metrics",
        description="Check current data (CSV, Parquet or data-capture JSONL; file or directory) against "
        "--baseline-dir/{statistics,constraints}.json. Writes statistics.json, constraints.json, "
        "constraint_violations.json, drift_report.json and cloudwatch_metrics.jsonl (Embedded Metric Format) to "
        "--output. Exits 0 whether or not there are violations.",
    )
    quality.add_argument("--input", required=True, type=Path, help="current data file or directory")
    quality.add_argument("--baseline-dir", required=True, type=Path, help="directory with statistics.json and constraints.json")
    quality.add_argument("--output", required=True, type=Path, help="directory for the reports")
    quality.add_argument("--endpoint", help="endpoint name (metric dimension; omit for batch monitoring)")
    quality.add_argument("--schedule", default="local", help="monitoring schedule name (metric dimension; default local)")
    quality.set_defaults(func=run_data_quality_command)

    model = jobs.add_parser(
        "model-quality",
        help="model-quality statistics of merged traffic and violations against the evaluation's constraints",
        description="Read merged records (capture + groundTruthData) under --merged, compute Model Monitor "
        "model-quality statistics (standard_deviation over 5 x 80%% subsamples) and compare them with --constraints "
        "(model_quality_constraints.json from the evaluation). Writes statistics.json and "
        "constraint_violations.json to --output. Exits 0 whether or not there are violations.",
    )
    model.add_argument("--merged", required=True, type=Path, help="merged JSONL file or directory")
    model.add_argument("--constraints", required=True, type=Path, help="model_quality_constraints.json")
    model.add_argument("--problem-type", required=True, choices=["BinaryClassification", "Regression"])
    model.add_argument("--output", required=True, type=Path, help="directory for the reports")
    model.add_argument("--threshold", type=float, default=0.5, help="decision threshold (default 0.5)")
    model.set_defaults(func=run_model_quality_command)

    bias = jobs.add_parser(
        "bias",
        help="bias drift (DI, SPD per protected attribute) and feature-attribution drift (SHAP ranking NDCG)",
        description="Compare merged traffic with the training baseline: disparate impact and statistical parity "
        "difference per protected attribute of --dataset-config against --baseline-dir/bias.json, and the live mean "
        "|SHAP| ranking against --baseline-dir/explainability.json (NDCG; violation below --ndcg-threshold). "
        "Writes bias_attribution_report.json and constraint_violations.json to --output.",
    )
    bias.add_argument("--merged", required=True, type=Path, help="merged JSONL file or directory")
    bias.add_argument("--baseline-dir", required=True, type=Path, help="directory with bias.json and explainability.json")
    bias.add_argument("--model", required=True, type=Path, help="model directory (extracted) or model.tar.gz")
    bias.add_argument("--dataset-config", required=True, type=Path, help="dataset config YAML or JSON")
    bias.add_argument("--output", required=True, type=Path, help="directory for the reports")
    bias.add_argument("--threshold", type=float, help="decision threshold (default: bias.json's)")
    bias.add_argument("--ndcg-threshold", type=float, default=0.90, help="attribution drift threshold (default 0.90)")
    bias.add_argument("--di-tolerance", type=float, default=0.1, help="allowed DI change from baseline (default 0.1)")
    bias.add_argument("--spd-tolerance", type=float, default=0.1, help="allowed SPD change from baseline (default 0.1)")
    bias.set_defaults(func=run_bias_command)

    merge = subparsers.add_parser(
        "merge-ground-truth",
        help="join data capture with ground-truth labels for one window",
        description="Join capture records with labels on inferenceId (else eventId) for the window "
        "[--at + --start-offset, --at + --end-offset]; unmatched records are kept for later windows. "
        "Prints a JSON report.",
    )
    merge._negative_number_matcher = _NEGATIVE_NUMBER_OR_DURATION  # accept "--start-offset -PT3H"
    merge.add_argument("--capture", required=True, type=Path, help="data-capture prefix ({endpoint}/{variant}/yyyy/mm/dd/hh)")
    merge.add_argument("--ground-truth", required=True, type=Path, help="ground-truth prefix (yyyy/mm/dd/hh)")
    merge.add_argument("--output", required=True, type=Path, help="merged output prefix (yyyy/mm/dd/hh of the window end)")
    merge.add_argument("--start-offset", required=True, help="ISO-8601 duration before --at, e.g. -PT3H")
    merge.add_argument("--end-offset", required=True, help="ISO-8601 duration before --at, e.g. -PT1H")
    merge.add_argument("--at", help="run time, ISO-8601 (default: now, UTC)")
    merge.add_argument("--state-dir", type=Path, help="pending records and cursors (default: OUTPUT/_merge_state)")
    merge.add_argument("--workers", type=int, help="processes (default: up to 2)")
    merge.set_defaults(func=run_merge)


def _check_output(path: Path) -> None:
    """--output is a directory the reports go to: refuse an existing file before any work (nothing is overwritten)."""
    if path.exists() and not path.is_dir():
        raise UserError(f"--output {path}: exists and is not a directory; pass a directory for the reports")


def _check_fraction(option: str, value: float | None, *, low: float = 0.0, high: float = 1.0) -> None:
    if value is not None and not low <= value <= high:
        raise UserError(f"{option} must be between {low:g} and {high:g}, got {value:g}")


# -- baseline ------------------------------------------------------------------------------------------------------
def run_baseline(args: argparse.Namespace) -> int:
    from sagestep.monitoring.baseline import build_baseline
    from sagestep.monitoring.columns import BASELINE_CONFIG, MonitoredColumns, fit_for_baseline
    from sagestep.monitoring.files import write_json
    from sagestep.monitoring.readers import iter_chunks
    from sagestep.training.config import ConfigError, load_dataset_config

    columns = None
    _check_output(args.output)
    try:
        chunks = iter_chunks(args.input)
        if args.dataset_config is not None:
            config = load_dataset_config(args.dataset_config)
            if not config.cleaning.is_fitted:  # caps need every row first: fit them on the baseline data
                import pandas as pd

                frames = list(chunks)
                config = fit_for_baseline(config, pd.concat(frames, ignore_index=True))
                chunks = iter(frames)
            columns = MonitoredColumns(config)
            statistics, constraints = build_baseline(
                columns.prepare(chunks), numeric=config.features.numeric, categorical=config.features.categorical,
                source=str(args.input))
        else:
            statistics, constraints = build_baseline(chunks, source=str(args.input))
    except (*_input_errors(), ConfigError) as exc:
        raise UserError(str(exc)) from None
    write_json(args.output / "statistics.json", statistics)
    write_json(args.output / "constraints.json", constraints, indent=2)
    written = [args.output / "statistics.json", args.output / "constraints.json"]
    if columns is not None:
        write_json(args.output / BASELINE_CONFIG, columns.config.to_dict(), indent=2)
        written.append(args.output / BASELINE_CONFIG)
    print(f"baseline: {statistics['dataset']['item_count']} rows, {len(statistics['features'])} features -> "
          f"{', '.join(map(str, written))}")
    if columns is not None:
        for line in filter(None, [columns.describe_not_monitored(), *columns.unreadable()]):
            print(f"  {line}")
    return 0


# -- data quality --------------------------------------------------------------------------------------------------
def run_data_quality_command(args: argparse.Namespace) -> int:
    from sagestep.monitoring.columns import current_chunks
    from sagestep.monitoring.constraints import global_config
    from sagestep.monitoring.data_quality import run_data_quality
    from sagestep.monitoring.files import read_json, write_json, write_jsonl
    from sagestep.monitoring.metrics_emf import emf_records
    from sagestep.monitoring.readers import ReadReport

    fix = f"run `sagestep baseline --input TRAIN_DATA --output {args.baseline_dir}` first"
    _check_output(args.output)
    report = ReadReport()
    try:
        statistics = read_json(args.baseline_dir / "statistics.json", "baseline statistics", fix)
        constraints = read_json(args.baseline_dir / "constraints.json", "baseline constraints", fix)
        chunks, columns = current_chunks(args.input, statistics, args.baseline_dir, report)
        result = run_data_quality(chunks, statistics, constraints)
        emit = global_config(constraints).emit_metrics
    except _input_errors() as exc:
        raise UserError(str(exc)) from None
    out: Path = args.output
    write_json(out / "statistics.json", result.statistics)
    write_json(out / "constraints.json", constraints, indent=2)
    write_json(out / "constraint_violations.json", result.violations, indent=2)
    write_json(out / "drift_report.json", result.drift_report, indent=2)
    records = (
        emf_records(
            result.statistics,
            result.drift_report,
            schedule=args.schedule,
            endpoint=args.endpoint,
            timestamp=dt.datetime.now(dt.timezone.utc),
        )
        if emit
        else []
    )
    write_jsonl(out / "cloudwatch_metrics.jsonl", records)
    print(_summary(result.statistics, result.violations, result.drift_report, report, out, columns))
    return 0


def _summary(
    statistics: dict[str, Any], violations: dict[str, Any], drift_report: dict[str, Any], report: Any, out: Path,
    columns: Any = None,
) -> str:
    found = violations["violations"]
    lines = [
        f"data quality: {statistics['dataset']['item_count']} rows from {len(report.files)} file(s), "
        f"{report.malformed_lines} malformed line(s); {len(found)} violation(s)"
    ]
    for check, count in sorted(Counter(v["constraint_check_type"] for v in found).items()):
        names = sorted({v["feature_name"] for v in found if v["constraint_check_type"] == check})
        lines.append(f"  {check}: {count} ({', '.join(names)})")
    if drift_report["flagged_features"]:
        lines.append(f"  drifted: {', '.join(drift_report['flagged_features'])}")
    for example in report.malformed_examples[:3]:
        lines.append(f"  malformed: {example}")
    if columns is not None:
        lines += [f"  {line}" for line in filter(None, [columns.describe_not_monitored(), *columns.unreadable()])]
    lines.append(f"  reports: {out}")
    return "\n".join(lines)


# -- model quality -------------------------------------------------------------------------------------------------
def run_model_quality_command(args: argparse.Namespace) -> int:
    from sagestep.monitoring.files import read_json, write_json
    from sagestep.monitoring.merged import read_merged
    from sagestep.monitoring.model_quality import ModelQualityInputError, run_model_quality

    _check_output(args.output)
    _check_fraction("--threshold", args.threshold)
    if not args.merged.exists():
        raise UserError(f"--merged {args.merged}: no such file or directory; pass the merged JSONL (the output of "
                        "`sagestep merge-ground-truth`)")
    try:
        constraints = read_json(args.constraints, "model-quality constraints",
                                "pass the model_quality_constraints.json the evaluation wrote")
        merged = read_merged(args.merged, None)
        if not len(merged) and merged.report.malformed_lines:
            raise UserError(f"{args.merged}: no readable merged record; {merged.report.malformed_lines} malformed "
                            f"(first: {merged.report.malformed_examples[0]})")
        if not len(merged):
            raise UserError(f"--merged {args.merged}: no merged record (no non-empty .jsonl file); merge ground truth "
                            "into it first (`sagestep merge-ground-truth`), or point at the right window")
        statistics, violations = run_model_quality(merged.labels, merged.scores, constraints, args.problem_type,
                                                   threshold=args.threshold, source=str(args.constraints))
    except (*_input_errors(), ModelQualityInputError) as exc:
        raise UserError(str(exc)) from None
    write_json(args.output / "statistics.json", statistics)
    write_json(args.output / "constraint_violations.json", violations, indent=2)
    found = violations["violations"]
    print(f"model quality: {len(merged)} merged record(s), {merged.report.malformed_lines} malformed; "
          f"{len(found)} violation(s)" + "".join(f"\n  {v['description']}" for v in found)
          + f"\n  reports: {args.output}")
    return 0


# -- bias and attribution drift ------------------------------------------------------------------------------------
def run_bias_command(args: argparse.Namespace) -> int:
    from sagestep.monitoring.files import read_json, write_json
    import tarfile
    import tempfile

    from sagestep.training.config import ConfigError, load_dataset_config
    from sagestep.training.model import ModelInputError, ScoringModel
    from sagestep.monitoring.bias_drift import BiasInputError, BiasThresholds, run_bias_attribution
    from sagestep.monitoring.merged import read_merged

    _check_output(args.output)
    _check_fraction("--threshold", args.threshold)
    _check_fraction("--ndcg-threshold", args.ndcg_threshold)
    _check_fraction("--di-tolerance", args.di_tolerance, high=10.0)
    _check_fraction("--spd-tolerance", args.spd_tolerance, high=2.0)
    thresholds = BiasThresholds(ndcg_threshold=args.ndcg_threshold, di_tolerance=args.di_tolerance,
                                spd_tolerance=args.spd_tolerance)
    fix = "pass the training evaluation output (bias.json, explainability.json) as --baseline-dir"
    try:
        config = load_dataset_config(args.dataset_config)
        bias = read_json(args.baseline_dir / "bias.json", "baseline bias report", fix)
        explainability = read_json(args.baseline_dir / "explainability.json", "baseline explainability", fix)
        with tempfile.TemporaryDirectory() as tmp:
            if args.model.is_file():
                try:
                    with tarfile.open(args.model) as tar:
                        tar.extractall(tmp, filter="data")
                except tarfile.TarError as exc:
                    raise UserError(f"--model {args.model}: not a model.tar.gz ({exc}); pass the training job's "
                                    "model.tar.gz or its extracted directory") from None
                model = ScoringModel.load(tmp)
            else:
                model = ScoringModel.load(args.model)
        merged = read_merged(args.merged, model.input_columns, numeric=model.plain_numeric_inputs)
        merged.features = model.clean(merged.features)  # the dataset config's cleaning, as at training
        report, violations = run_bias_attribution(merged.features, merged.labels, merged.scores, config, bias,
                                                  explainability, model, threshold=args.threshold,
                                                  thresholds=thresholds)
    except (*_input_errors(), ConfigError, BiasInputError, ModelInputError, tarfile.TarError, OSError) as exc:
        raise UserError(str(exc)) from None
    write_json(args.output / "bias_attribution_report.json", report, indent=2)
    write_json(args.output / "constraint_violations.json", violations, indent=2)
    found = violations["violations"]
    print(f"bias/attribution: {report['n_rows']} merged record(s); {len(found)} violation(s)"
          + "".join(f"\n  {v.get('facet') or v.get('feature')}: {v['description']}" for v in found)
          + f"\n  reports: {args.output}")
    return 0


# -- ground-truth merge --------------------------------------------------------------------------------------------
def run_merge(args: argparse.Namespace) -> int:
    from sagestep.monitoring.merge import merge_ground_truth, parse_time

    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    try:
        at = parse_time(args.at) if args.at else None
        report = merge_ground_truth(
            args.capture,
            args.ground_truth,
            args.output,
            start_offset=args.start_offset,
            end_offset=args.end_offset,
            at=at,
            state_dir=args.state_dir,
            workers=args.workers,
        )
    except _input_errors() as exc:
        raise UserError(str(exc)) from None
    print(json.dumps(report.to_dict(), allow_nan=False))
    return 0
