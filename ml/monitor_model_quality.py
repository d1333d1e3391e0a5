"""Model-quality monitor (SageMaker Processing job): merged traffic (capture + ground truth) against constraints.

    python3 ml/monitor_model_quality.py --merged-dir M --constraints-dir C --output-dir O \
        --problem-type BinaryClassification [--threshold T]

M holds merged JSONL (the ground-truth merge output of the window); C is the training evaluation output, holding
model_quality_constraints.json. The decision threshold is --threshold, else `decision_threshold` of C/summary.json
(written by ml/evaluate.py), else of C/bias.json, else 0.5. Writes to O: statistics.json (Model Monitor
model-quality statistics), constraint_violations.json and summary.json (Metrics = the scalar metrics: auc, f1, ...).
Violations are results: exit 0. An empty window writes Records 0 and exits 0. Bad input: stderr message, exit 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

try:
    import sagestep  # noqa: F401
except ImportError:  # run from a checkout without PYTHONPATH: the code bundle mirrors the repo (ml/ beside src/)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sagestep.monitoring.files import DocumentError, read_json, write_json
from sagestep.monitoring.merged import read_merged
from sagestep.monitoring.model_quality import (
    PROBLEM_TYPES,
    ModelQualityInputError,
    run_model_quality,
    scalar_metrics,
)
from sagestep.monitoring.summary import summary

CHECK = "model_quality"
CONSTRAINTS_FILE = "model_quality_constraints.json"
DEFAULT_THRESHOLD = 0.5


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--merged-dir", type=Path, required=True, help="merged capture + ground truth JSONL")
    parser.add_argument("--constraints-dir", type=Path, required=True, help=f"directory with {CONSTRAINTS_FILE}")
    parser.add_argument("--output-dir", type=Path, required=True, help="where the reports go")
    parser.add_argument("--problem-type", required=True, choices=sorted(PROBLEM_TYPES))
    parser.add_argument("--threshold", type=float, help="decision threshold (default: the evaluation's, else 0.5)")
    return parser.parse_args(argv)


def default_threshold(constraints_dir: Path) -> float:
    """`decision_threshold` from the evaluation's summary.json or bias.json beside the constraints, else 0.5."""
    for name in ("summary.json", "bias.json"):
        path = constraints_dir / name
        if path.is_file():
            try:
                value = json.loads(path.read_text(encoding="utf-8")).get("decision_threshold")
            except (json.JSONDecodeError, AttributeError):
                continue
            if isinstance(value, int | float):
                return float(value)
    return DEFAULT_THRESHOLD


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out: Path = args.output_dir
    constraints_path = args.constraints_dir / CONSTRAINTS_FILE
    try:
        constraints = read_json(constraints_path, "model-quality constraints",
                                "point --constraints-dir at the training evaluation output (ml/evaluate.py)")
        threshold = args.threshold if args.threshold is not None else default_threshold(args.constraints_dir)
        merged = read_merged(args.merged_dir, None)  # scores and labels only
        statistics, violations = run_model_quality(merged.labels, merged.scores, constraints, args.problem_type,
                                                   threshold=threshold, source=str(constraints_path))
    except (DocumentError, ModelQualityInputError) as exc:
        print(f"monitor_model_quality failed: {exc}", file=sys.stderr)
        return 1
    if merged.report.malformed_lines and not len(merged):
        print(f"monitor_model_quality failed: {args.merged_dir}: no readable merged record; "
              f"{merged.report.malformed_lines} malformed (first: {merged.report.malformed_examples[0]})",
              file=sys.stderr)
        return 1
    write_json(out / "statistics.json", statistics)
    write_json(out / "constraint_violations.json", violations, indent=2)
    result = summary(CHECK, violations["violations"], metrics=scalar_metrics(statistics), records=len(merged))
    write_json(out / "summary.json", result, indent=2)
    print(f"model quality: {len(merged)} merged record(s), {merged.report.malformed_lines} malformed, threshold "
          f"{threshold:g}; {result['Violations']} violation(s) {[v['metric_name'] for v in violations['violations']]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
