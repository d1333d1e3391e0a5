"""Bias and feature-attribution drift monitor (SageMaker Processing job) on merged traffic.

    python3 ml/monitor_bias.py --merged-dir M --baseline-dir B --model-dir MODEL --config-dir C --output-dir O \
        [--threshold T] [--ndcg-threshold 0.9] [--di-tolerance 0.1] [--spd-tolerance 0.1]

M holds merged JSONL (capture + ground truth; endpointInput is the CSV row in the model's feature order); B holds
the training evaluation's bias.json and explainability.json; MODEL holds model.tar.gz (or an extracted model);
C holds dataset_config.json (protected attributes; the feature order is the model's). The decision threshold is
--threshold, else bias.json's decision_threshold. Writes to O: bias_attribution_report.json (per attribute DI and
SPD now and at baseline; live mean |SHAP| ranking and NDCG), constraint_violations.json (Clarify's shape:
bias_drift_check, feature_attribution_drift_check) and summary.json (Metrics: `disparate_impact_<attr>`,
`statistical_parity_difference_<attr>`, `attribution_ndcg`). Violations are results: exit 0. An empty window:
Records 0, exit 0. Bad input: stderr message, exit 1.
"""

from __future__ import annotations

import argparse
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

try:
    import sagestep  # noqa: F401
except ImportError:  # run from a checkout without PYTHONPATH: the code bundle mirrors the repo (ml/ beside src/)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sagestep.training.config import ConfigError, find_config_file, load_dataset_config
from sagestep.training.model import MODEL_ARCHIVE, ModelInputError, ScoringModel
from sagestep.monitoring.bias_drift import BiasInputError, BiasThresholds, flagged, run_bias_attribution
from sagestep.monitoring.files import DocumentError, read_json, write_json
from sagestep.monitoring.merged import read_merged
from sagestep.monitoring.summary import summary

CHECK = "bias_attribution"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    d = BiasThresholds()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--merged-dir", type=Path, required=True, help="merged capture + ground truth JSONL")
    parser.add_argument("--baseline-dir", type=Path, required=True, help="directory with bias.json, explainability.json")
    parser.add_argument("--model-dir", type=Path, required=True, help=f"directory with {MODEL_ARCHIVE}")
    parser.add_argument("--config-dir", type=Path, required=True, help="directory with dataset_config.json")
    parser.add_argument("--output-dir", type=Path, required=True, help="where the reports go")
    parser.add_argument("--threshold", type=float, help="decision threshold (default: bias.json's)")
    parser.add_argument("--ndcg-threshold", type=float, default=d.ndcg_threshold)
    parser.add_argument("--di-tolerance", type=float, default=d.di_tolerance)
    parser.add_argument("--spd-tolerance", type=float, default=d.spd_tolerance)
    return parser.parse_args(argv)


def bias_summary(report: dict[str, Any], violations: list[dict[str, Any]]) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for row in report["bias_drift"]:
        if "disparate_impact" not in row:  # an attribute the capture does not hold: not judged (see its reason)
            continue
        metrics[f"disparate_impact_{row['name']}"] = row["disparate_impact"]
        metrics[f"statistical_parity_difference_{row['name']}"] = row["statistical_parity_difference"]
    if report.get("attribution_drift"):
        metrics["attribution_ndcg"] = report["attribution_drift"]["ndcg"]
    return summary(CHECK, violations, flagged=flagged(violations), metrics=metrics, records=report["n_rows"])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out: Path = args.output_dir
    thresholds = BiasThresholds(ndcg_threshold=args.ndcg_threshold, di_tolerance=args.di_tolerance,
                                spd_tolerance=args.spd_tolerance)
    fix = "point --baseline-dir at the training evaluation output (ml/evaluate.py)"
    try:
        config = load_dataset_config(find_config_file(args.config_dir))
        bias = read_json(args.baseline_dir / "bias.json", "baseline bias report", fix)
        explainability = read_json(args.baseline_dir / "explainability.json", "baseline explainability", fix)
        with tempfile.TemporaryDirectory() as tmp:
            model = ScoringModel.from_artifact(args.model_dir, Path(tmp))
        merged = read_merged(args.merged_dir, model.input_columns, numeric=model.plain_numeric_inputs)
        merged.features = model.clean(merged.features)  # the dataset config's cleaning, as at training
        if merged.report.malformed_lines and not len(merged):
            raise BiasInputError(f"{args.merged_dir}: no readable merged record; {merged.report.malformed_lines} "
                                 f"malformed (first: {merged.report.malformed_examples[0]})")
        report, violations = run_bias_attribution(
            merged.features, merged.labels, merged.scores, config, bias, explainability, model,
            threshold=args.threshold, thresholds=thresholds)
    except (ConfigError, DocumentError, BiasInputError, ModelInputError, tarfile.TarError) as exc:
        print(f"monitor_bias failed: {exc}", file=sys.stderr)
        return 1
    write_json(out / "bias_attribution_report.json", report, indent=2)
    write_json(out / "constraint_violations.json", violations, indent=2)
    result = bias_summary(report, violations["violations"])
    write_json(out / "summary.json", result, indent=2)
    print(f"bias/attribution: {result['Records']} merged record(s), {merged.report.malformed_lines} malformed; "
          f"{result['Violations']} violation(s) {result['ViolationTypes']} on {result['FlaggedFeatures']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
