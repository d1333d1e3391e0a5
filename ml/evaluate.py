"""Evaluate (SageMaker Processing job): score the test split with the trained model and write the reports.

    python3 ml/evaluate.py --model-dir M --test-dir T --config-dir C --output-dir O

M holds model.tar.gz (or an extracted model directory), T the test CSV, C dataset_config.json; H (optional,
`--history-dir`) the earlier splits, where a Regression's naive seasonal forecast looks up past targets. Writes to O:
evaluation.json (Model Monitor model-quality statistics, plus credit metrics and calibration; a Regression's
regression_metrics plus MAPE and the naive forecast's errors),
model_quality_constraints.json, bias.json, explainability.json, scores.csv (id, label, score), summary.json
(the flat numbers the quality gate reads), manifest.json (hashes of the inputs, the model's hyperparameters) and
sample_payload.tar.gz (held-out rows in request format: the package's SamplePayloadUrl).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import sagestep  # noqa: F401
except ImportError:  # run from a checkout without PYTHONPATH: the code bundle mirrors the repo (ml/ beside src/)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import pandas as pd

from sagestep.training.config import ConfigError, DatasetConfig, find_config_file, load_dataset_config
from sagestep.training.explain import global_explanation
from sagestep.training.fairness import fairness_report
from sagestep.training.gate import fairness_key
from sagestep.training.metrics import (
    binary_classification_statistics,
    calibration,
    credit_metrics,
    model_quality_constraints,
    naive_seasonal_forecast,
    regression_extras,
    regression_statistics,
)
from sagestep.training.model import MODEL_ARCHIVE, ModelInputError, ScoringModel
from sagestep.training.preprocess import DataError, file_record, load_prepared

CONSTRAINED_METRICS = ("auc", "accuracy", "precision", "recall", "f1")
REGRESSION_CONSTRAINED_METRICS = ("mae", "rmse", "r2")
CONSTRAINT_STD_MULTIPLIER = 3.0
# Mean |SHAP| per feature from a sample of the test rows: TreeSHAP costs grow with trees × depth² per row (5000
# rows of a 1000-tree model took longer than scoring all 200k test rows), and 2000 rows rank features stably.
EXPLAIN_MAX_ROWS = 2000
SAMPLE_PAYLOAD = "sample_payload.tar.gz"
SAMPLE_ROWS = 10


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True, help="directory holding model.tar.gz")
    parser.add_argument("--test-dir", type=Path, required=True, help="directory holding the test CSV")
    parser.add_argument("--config-dir", type=Path, required=True, help="directory holding dataset_config.json")
    parser.add_argument("--output-dir", type=Path, required=True, help="where the reports go")
    parser.add_argument("--history-dir", type=Path, default=None,
                        help="directory of the earlier splits (CSV, recursively): a Regression's naive forecast")
    return parser.parse_args(argv)


@dataclass
class Evaluation:
    statistics: dict[str, Any]
    constraints: dict[str, Any]
    bias: dict[str, Any]
    explainability: dict[str, Any]
    scores: pd.DataFrame
    summary: dict[str, Any]


def evaluate_regression(model: ScoringModel, test: pd.DataFrame, config: DatasetConfig,
                        history: pd.DataFrame | None = None) -> Evaluation:
    """A regressor's reports: Model Monitor regression metrics, MAPE, the naive seasonal forecast (the target
    `naive_lag_days` earlier, looked up in `history` and the test rows) and its errors on the rows it covers."""
    y = test[config.target].to_numpy(dtype=float)
    predicted = model.predict_proba(test)
    statistics = regression_statistics(y, predicted, seed=config.split.seed)
    known = pd.concat([history, test], ignore_index=True) if history is not None else test
    naive = naive_seasonal_forecast(test, known, config)
    statistics["regression_extras"] = regression_extras(y, predicted, naive)
    constraints = model_quality_constraints(statistics, metrics=REGRESSION_CONSTRAINED_METRICS,
                                            std_multiplier=CONSTRAINT_STD_MULTIPLIER)
    bias = {"version": 1, "problem_type": "Regression", "attributes": [],
            "note": "fairness measures (disparate impact of decisions) apply to classifiers"}
    explainability = global_explanation(model, test, max_rows=EXPLAIN_MAX_ROWS, seed=config.split.seed)
    ids = test[config.id_column] if config.id_column is not None else pd.Series(range(len(test)))
    table = {"id": ids.to_numpy(), "label": y, "score": predicted, "naive": naive}
    if config.event_time_column is not None:
        table["time"] = test[config.event_time_column].to_numpy()
    m, extras = statistics["regression_metrics"], statistics["regression_extras"]
    summary: dict[str, Any] = {
        "dataset": config.name,
        "problem_type": "Regression",
        "algorithm": model.algorithm,
        **{name: m[name]["value"] for name in ("mae", "mse", "rmse", "r2")},
        "mape": extras["mape"],
        "naive_rmse": extras["naive_rmse"],
        "naive_mae": extras["naive_mae"],
        "rmse_on_naive_rows": extras["rmse_on_naive_rows"],
        "error_ratio_to_naive": extras["error_ratio_to_naive"],
        "naive_rows": extras["naive_rows"],
        "naive_lag_days": config.thresholds.naive_lag_days,
        "max_error_ratio_to_naive": config.thresholds.max_error_ratio_to_naive,
        "n_test": int(len(test)),
        "target_mean": float(y.mean()),
    }
    return Evaluation(statistics, constraints, bias, explainability, pd.DataFrame(table), summary)


def evaluate(model: ScoringModel, test: pd.DataFrame, config: DatasetConfig) -> Evaluation:
    """Score the (prepared, 0/1-labelled) test data and build every report. Pure: no I/O."""
    y = test[config.target].to_numpy()
    scores = model.predict_proba(test)
    statistics = binary_classification_statistics(y, scores, model.threshold, seed=config.split.seed)
    statistics["credit_metrics"] = credit_metrics(y, scores)
    statistics["calibration"] = calibration(y, scores)
    constraints = model_quality_constraints(
        statistics, metrics=CONSTRAINED_METRICS, thresholds={"auc": config.thresholds.min_auc},
        std_multiplier=CONSTRAINT_STD_MULTIPLIER,
    )
    bias = fairness_report(test, y, scores, config, threshold=model.threshold)
    explainability = global_explanation(model, test, max_rows=EXPLAIN_MAX_ROWS, seed=config.split.seed)

    ids = test[config.id_column] if config.id_column is not None else pd.Series(range(len(test)))
    score_table = pd.DataFrame({"id": ids.to_numpy(), "label": y, "score": scores})

    m = statistics["binary_classification_metrics"]
    summary: dict[str, Any] = {
        "dataset": config.name,
        "algorithm": model.algorithm,
        "auc": m["auc"]["value"],
        "ks": statistics["credit_metrics"]["ks"],
        "gini": statistics["credit_metrics"]["gini"],
        "accuracy": m["accuracy"]["value"],
        "precision": m["precision"]["value"],
        "recall": m["recall"]["value"],
        "f1": m["f1"]["value"],
        "brier": statistics["credit_metrics"]["brier"],
        "n_test": int(len(test)),
        "positive_rate": float(y.mean()),
        "decision_threshold": model.threshold,
        "min_auc": config.thresholds.min_auc,
    }
    for attr in bias["attributes"]:
        for measure in ("disparate_impact", "statistical_parity_difference", "equal_opportunity_difference"):
            summary[fairness_key(measure, attr["name"])] = attr[measure]
    return Evaluation(statistics, constraints, bias, explainability, score_table, summary)


def sample_payload(model: ScoringModel, test: pd.DataFrame, rows: int = SAMPLE_ROWS) -> bytes:
    """Held-out rows as the endpoint takes them (CSV of the model's input columns in order, header first),
    tar.gz'd: registered as the package's SamplePayloadUrl, read by the deployment smoke test."""
    csv_bytes = test.loc[:, model.input_columns].head(rows).to_csv(index=False).encode("utf-8")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("sample.csv")
        info.size = len(csv_bytes)
        archive.addfile(info, io.BytesIO(csv_bytes))
    return buffer.getvalue()


def write_json(path: Path, document: Any) -> None:
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out: Path = args.output_dir
    try:
        config = load_dataset_config(find_config_file(args.config_dir))
        test = load_prepared(args.test_dir, config)
        with tempfile.TemporaryDirectory() as tmp:
            model = ScoringModel.from_artifact(args.model_dir, Path(tmp))
        if config.is_regression:
            history = None
            if args.history_dir is not None and any(args.history_dir.rglob("*.csv")):
                history = pd.concat([load_prepared(f, config) for f in sorted(args.history_dir.rglob("*.csv"))],
                                    ignore_index=True)
            result = evaluate_regression(model, test, config, history)
        else:
            if abs(model.threshold - config.thresholds.decision_threshold) > 1e-12:
                print(f"warning: the model's decision threshold {model.threshold} differs from the config's "
                      f"{config.thresholds.decision_threshold}; evaluating at the model's", file=sys.stderr)
            result = evaluate(model, test, config)
    except (ConfigError, DataError, ModelInputError, FileNotFoundError, tarfile.TarError) as exc:
        print(f"evaluate failed: {exc}", file=sys.stderr)
        return 1

    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "evaluation.json", result.statistics)
    write_json(out / "model_quality_constraints.json", result.constraints)
    write_json(out / "bias.json", result.bias)
    write_json(out / "explainability.json", result.explainability)
    result.scores.to_csv(out / "scores.csv", index=False)
    (out / SAMPLE_PAYLOAD).write_bytes(sample_payload(model, test))
    write_json(out / "summary.json", result.summary)
    archive = args.model_dir / MODEL_ARCHIVE
    write_json(out / "manifest.json", {
        "version": 1,
        "dataset": config.name,
        "model": file_record(archive, args.model_dir) if archive.is_file() else None,
        "test": [file_record(f, args.test_dir) for f in sorted(args.test_dir.glob("*.csv"))],
        "config_sha256": config.sha256(),
        "algorithm": model.algorithm,
        "hyperparameters": model.metadata.get("hyperparameters"),
        "best_iteration": model.metadata.get("best_iteration"),
        "training_data": model.metadata.get("training_data"),
    })
    s = result.summary
    if config.is_regression:
        print(f"evaluate: {config.name} {model.algorithm}: test rmse={s['rmse']:.4f} mae={s['mae']:.4f} "
              f"r2={s['r2']:.4f}; naive seasonal rmse={s['naive_rmse']}, ratio {s['error_ratio_to_naive']} "
              f"on {s['naive_rows']} of {s['n_test']} rows")
        return 0
    print(f"evaluate: {config.name} {model.algorithm}: test auc={s['auc']:.4f} ks={s['ks']:.4f} "
          f"gini={s['gini']:.4f} on {s['n_test']} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
