"""Data-quality monitor (SageMaker Processing job): one window of endpoint data capture against the baseline.

    python3 ml/monitor_data_quality.py --input-dir CAPTURE --baseline-dir B --output-dir O --endpoint NAME \
        --schedule NAME

CAPTURE holds data-capture JSONL (or CSV/Parquet) of the window; B holds statistics.json, constraints.json and
dataset_config.json (ml/baseline.py): current rows are cleaned with the config's cleaning and only the model's
features are checked; other columns are listed once in summary.json (`NotMonitored`). Writes to O: statistics.json, constraints.json, constraint_violations.json, drift_report.json,
cloudwatch_metrics.jsonl (Embedded Metric Format, also printed to stdout for CloudWatch Logs) and summary.json.
Violations are results: exit 0. An empty window (no capture) writes a summary with Records 0 and exits 0.
Bad input (missing or unreadable baseline, unreadable data): a message on stderr naming the file, exit 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

try:
    import sagestep  # noqa: F401
except ImportError:  # run from a checkout without PYTHONPATH: the code bundle mirrors the repo (ml/ beside src/)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sagestep.monitoring.constraints import ConstraintsError, global_config
from sagestep.monitoring.data_quality import DataQualityResult, StatisticsFormatError, run_data_quality
from sagestep.monitoring.files import DocumentError, read_json, write_json, write_jsonl
from sagestep.monitoring.kll import SketchFormatError
from sagestep.monitoring.metrics_emf import emf_records
from sagestep.monitoring.columns import current_chunks
from sagestep.monitoring.readers import DataInputError, ReadReport
from sagestep.monitoring.summary import has_data, summary

CHECK = "data_quality"
INPUT_ERRORS = (DataInputError, DocumentError, StatisticsFormatError, ConstraintsError, SketchFormatError)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-dir", type=Path, required=True, help="data capture of the window")
    parser.add_argument("--baseline-dir", type=Path, required=True, help="directory with statistics.json, constraints.json")
    parser.add_argument("--output-dir", type=Path, required=True, help="where the reports go")
    parser.add_argument("--endpoint", help="endpoint name (metric dimension; omit for batch transform captures)")
    parser.add_argument("--schedule", required=True, help="monitoring schedule name (metric dimension)")
    return parser.parse_args(argv)


def data_quality_summary(result: DataQualityResult) -> dict[str, Any]:
    """summary.json of a data-quality result. Pure."""
    metrics = {f"feature_baseline_drift_{f['name']}": f["distance"] for f in result.drift_report["features"]
               if f.get("distance") is not None}
    flagged = [v["feature_name"] for v in result.violation_list]
    return summary(CHECK, result.violation_list, flagged=flagged, metrics=metrics,
                   records=result.statistics["dataset"]["item_count"])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out: Path = args.output_dir
    fix = "point --baseline-dir at the training pipeline's baseline output (ml/baseline.py)"
    try:
        statistics = read_json(args.baseline_dir / "statistics.json", "baseline statistics", fix)
        constraints = read_json(args.baseline_dir / "constraints.json", "baseline constraints", fix)
        if not has_data(args.input_dir):
            write_json(out / "constraint_violations.json", {"violations": []}, indent=2)
            write_jsonl(out / "cloudwatch_metrics.jsonl", [])
            write_json(out / "summary.json", summary(CHECK, [], records=0), indent=2)
            print(f"data quality: no capture in {args.input_dir} (empty window); nothing to check")
            return 0
        report = ReadReport()
        chunks, columns = current_chunks(args.input_dir, statistics, args.baseline_dir, report)
        result = run_data_quality(chunks, statistics, constraints)
        emit = global_config(constraints).emit_metrics
    except INPUT_ERRORS as exc:
        print(f"monitor_data_quality failed: {exc}", file=sys.stderr)
        return 1
    write_json(out / "statistics.json", result.statistics)
    write_json(out / "constraints.json", constraints, indent=2)
    write_json(out / "constraint_violations.json", result.violations, indent=2)
    write_json(out / "drift_report.json", result.drift_report, indent=2)
    records = emf_records(result.statistics, result.drift_report, schedule=args.schedule, endpoint=args.endpoint,
                          timestamp=dt.datetime.now(dt.timezone.utc)) if emit else []
    write_jsonl(out / "cloudwatch_metrics.jsonl", records)
    for record in records:
        print(json.dumps(record, allow_nan=False))
    result_summary = data_quality_summary(result)
    if columns is not None:
        result_summary["NotMonitored"] = columns.not_monitored
        result_summary["Unreadable"] = columns.unreadable()
    write_json(out / "summary.json", result_summary, indent=2)
    print(f"data quality: {result_summary['Records']} rows from {len(report.files)} file(s), "
          f"{report.malformed_lines} malformed line(s); {result_summary['Violations']} violation(s) "
          f"{result_summary['ViolationTypes']} on {result_summary['FlaggedFeatures']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
