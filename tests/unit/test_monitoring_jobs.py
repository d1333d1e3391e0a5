"""Model quality, bias and attribution drift, and the three monitoring entry points (ml/monitor_*.py), on real rows.

A LightGBM model is trained on credit_data's train split; the training pipeline's own functions write the
baseline (ml/baseline.py) and evaluation (ml/evaluate.py). Capture files are held-out test rows scored by that
model, in the endpoint's format (CSV row without header in the model's feature order, JSON predictions), merged
with their true labels.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from sagestep.training.config import load_dataset_config
from sagestep.training.metrics import binary_classification_statistics
from sagestep.monitoring.bias_drift import attribution_drift, bias_drift, ndcg, run_bias_attribution
from sagestep.monitoring.merged import parse_score, read_merged
from sagestep.monitoring.model_quality import constraint_violations, run_model_quality
from sagestep.training.preprocess import prepare_data, split_data
from sagestep.training.fit import parse_hyperparameters, train_model

REPO_ROOT = Path(__file__).resolve().parents[2]
SUMMARY_KEYS = {"Check", "Violations", "ViolationTypes", "FlaggedFeatures", "Metrics", "Records"}


def _load(name: str) -> ModuleType:
    """An ml/ script as a module (registered: its dataclasses need it)."""
    key = f"ml_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, REPO_ROOT / "ml" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


@pytest.fixture(scope="module")
def world(credit_data: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> dict:
    config = load_dataset_config(REPO_ROOT / "ml" / "config" / "credit_data.yaml")
    splits = split_data(prepare_data(credit_data, config), config)
    params = parse_hyperparameters({"algorithm": "lightgbm", "num_round": "60", "learning_rate": "0.1"})
    model = train_model(splits.train, splits.validation, config, params, log=lambda _: None).model
    root = tmp_path_factory.mktemp("monitoring")
    evaluation = _load("evaluate").evaluate(model, splits.test, config)
    (root / "evaluation").mkdir()
    for name, doc in (("evaluation.json", evaluation.statistics), ("bias.json", evaluation.bias),
                      ("model_quality_constraints.json", evaluation.constraints),
                      ("explainability.json", evaluation.explainability), ("summary.json", evaluation.summary)):
        (root / "evaluation" / name).write_text(json.dumps(evaluation_doc(doc)))
    statistics, constraints = _load("baseline").baseline(splits.train, config.to_dict())
    (root / "baseline").mkdir()
    (root / "baseline" / "statistics.json").write_text(json.dumps(statistics))
    (root / "baseline" / "constraints.json").write_text(json.dumps(constraints))
    (root / "model").mkdir()
    model.save(root / "model" / "extracted")
    with tarfile.open(root / "model" / "model.tar.gz", "w:gz") as tar:
        for path in (root / "model" / "extracted").iterdir():
            tar.add(path, arcname=path.name)
    (root / "config").mkdir()
    (root / "config" / "dataset_config.json").write_text(config.to_json())
    return {"config": config, "model": model, "test": splits.test.reset_index(drop=True), "root": root,
            "evaluation": evaluation}


def evaluation_doc(doc: dict) -> dict:
    return json.loads(json.dumps(doc, default=float))


def capture_lines(model, rows: pd.DataFrame, labels=None, scores=None) -> list[str]:
    """Endpoint capture records (merged with `labels` when given) for `rows`, scored by `model`."""
    features = rows.loc[:, list(model.features)]
    scores = model.predict_proba(features) if scores is None else scores
    csv_rows = features.to_csv(index=False, header=False).splitlines()
    lines = []
    for i, (row, score) in enumerate(zip(csv_rows, scores)):
        output = {"predictions": [{"score": round(float(score), 6), "decision": "decline" if score >= 0.5 else
                                   "approve", "threshold": 0.5, "reason_codes": []}]}
        record = {"captureData": {
            "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": row, "encoding": "CSV"},
            "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                               "data": json.dumps(output), "encoding": "JSON"}},
            "eventMetadata": {"eventId": f"e-{i}", "inferenceId": f"i-{i}", "inferenceTime": "2026-11-22T09:00:00Z"},
            "eventVersion": "0"}
        if labels is not None:
            record["groundTruthData"] = {"data": str(int(labels[i])), "encoding": "CSV"}
        lines.append(json.dumps(record))
    return lines


def write_lines(directory: Path, lines: list[str]) -> Path:
    hour = directory / "2026" / "11" / "22" / "09"
    hour.mkdir(parents=True, exist_ok=True)
    (hour / "part-0.jsonl").write_text("\n".join(lines) + "\n")
    return directory


def shifted(rows: pd.DataFrame) -> pd.DataFrame:
    """Two features drift: incomes doubled, seniority up 10 years."""
    out = rows.copy()
    out["Income"] = out["Income"] * 2
    out["Seniority"] = out["Seniority"] + 10
    return out


def biased_scores(model, rows: pd.DataFrame) -> np.ndarray:
    """The model's scores, except that married applicants under 25 are all declined (the young lose approvals;
    the married group barely changes, being mostly 25 or older)."""
    scores = model.predict_proba(rows)
    target = (pd.to_numeric(rows["Age"]) < 25) & (rows["Marital"].astype(str) == "married")
    return np.where(target, np.maximum(scores, 0.9), scores)


def labels_of(world) -> np.ndarray:
    return world["test"][world["config"].target].to_numpy()


# -- library: merged records, model quality --------------------------------------------------------------------
def test_endpoint_outputs_in_every_format_give_the_score():
    assert parse_score('{"predictions":[{"score":0.83,"decision":"decline","threshold":0.5}]}') == 0.83
    assert parse_score("0.25,approve,Income;Debt") == 0.25
    assert parse_score("0.4") == 0.4
    assert parse_score("decline") is None


def test_model_quality_of_merged_held_out_rows_matches_the_evaluation(world, tmp_path):
    # GIVEN held-out rows captured and merged with their true labels
    merged_dir = write_lines(tmp_path / "merged", capture_lines(world["model"], world["test"], labels_of(world)))
    merged = read_merged(merged_dir, None)
    constraints = world["evaluation"].constraints
    # WHEN model quality is computed against the evaluation's constraints
    statistics, violations = run_model_quality(merged.labels, merged.scores, constraints, "BinaryClassification",
                                               threshold=world["model"].threshold)
    # THEN the statistics are the evaluation's (scores rounded to 6 digits) with standard deviations, and no
    # constraint is violated
    metrics = statistics["binary_classification_metrics"]
    baseline = world["evaluation"].statistics["binary_classification_metrics"]
    assert statistics["dataset"]["item_count"] == len(world["test"])
    assert metrics["auc"]["value"] == pytest.approx(baseline["auc"]["value"], abs=1e-4)
    assert isinstance(metrics["auc"]["standard_deviation"], float) and metrics["auc"]["standard_deviation"] > 0
    assert metrics["confusion_matrix"] == baseline["confusion_matrix"]
    assert violations == {"violations": []}


def test_degraded_labels_violate_the_auc_constraint_with_its_operator(world):
    # GIVEN the held-out scores with 35% of labels flipped (the model got worse on live traffic)
    y = labels_of(world).astype(float)
    rng = np.random.default_rng(3)
    flip = rng.random(y.size) < 0.35
    y[flip] = 1 - y[flip]
    scores = world["model"].predict_proba(world["test"])
    # WHEN checked
    statistics, violations = run_model_quality(y, scores, world["evaluation"].constraints, "BinaryClassification")
    # THEN auc (LessThanThreshold 0.80) is violated, in Model Monitor's shape
    by_metric = {v["metric_name"]: v for v in violations["violations"]}
    assert by_metric["auc"]["constraint_check_type"] == "LessThanThreshold"
    assert by_metric["auc"]["description"].startswith("Metric auc with ")
    assert statistics["binary_classification_metrics"]["auc"]["value"] < 0.8


def test_every_comparison_operator_and_regression():
    stats = {"regression_metrics": {"rmse": {"value": 2.0, "standard_deviation": 0.1},
                                    "r2": {"value": 0.5, "standard_deviation": "NaN"}}}
    rules = {"regression_constraints": {
        "rmse": {"threshold": 1.5, "comparison_operator": "GreaterThanThreshold"},
        "r2": {"threshold": 0.5, "comparison_operator": "LessThanOrEqualToThreshold"},
        "mae": {"threshold": 9, "comparison_operator": "GreaterThanOrEqualToThreshold"}}}
    found = constraint_violations(stats, rules, "Regression")["violations"]
    assert [(v["metric_name"], v["constraint_check_type"]) for v in found] == [
        ("rmse", "GreaterThanThreshold"), ("r2", "LessThanOrEqualToThreshold")]
    y = np.linspace(0, 10, 300)
    statistics, _ = run_model_quality(y, y + 1, {"regression_constraints": {}}, "Regression")
    assert statistics["regression_metrics"]["mae"]["value"] == pytest.approx(1.0)


# -- library: bias and attribution drift -------------------------------------------------------------------------
def test_clean_traffic_has_no_bias_or_attribution_drift(world):
    test, model = world["test"], world["model"]
    report, violations = run_bias_attribution(
        test[list(model.features)], labels_of(world), model.predict_proba(test), world["config"],
        world["evaluation"].bias, world["evaluation"].explainability, model)
    assert violations["violations"] == []
    assert report["attribution_drift"]["ndcg"] == pytest.approx(1.0)
    assert {r["name"] for r in report["bias_drift"]} == {"Age", "Marital"}


def test_bias_against_the_young_is_a_bias_drift_violation_of_age_only(world):
    # GIVEN traffic where married applicants under 25 are all declined
    test, model = world["test"], world["model"]
    # WHEN checked against the baseline bias.json
    rows, violations = bias_drift(test[list(model.features)], labels_of(world), biased_scores(model, test),
                                  world["config"], world["evaluation"].bias)
    # THEN Age's DI leaves [0.8, 1.25] and its SPD moves; Marital stays within tolerance
    assert {(v["facet"], v["metric_name"]) for v in violations} == {("Age", "DI"), ("Age", "SPD")}
    assert violations[0]["constraint_check_type"] == "bias_drift_check"
    age = next(r for r in rows if r["name"] == "Age")
    assert age["disparate_impact"] < 0.8 <= age["baseline_disparate_impact"]


def test_a_changed_population_is_an_attribution_drift_violation(world):
    # GIVEN traffic where the four most important numeric features no longer vary (their median everywhere) and
    # the three least important ones sit at their 2nd/98th percentiles
    test, model = world["test"], world["model"].__class__.load(world["root"] / "model" / "extracted")
    ranking = world["evaluation"].explainability["ranking"]
    numeric = [n for n in ranking if n not in model.categorical]
    changed = test.copy()
    rng = np.random.default_rng(0)
    for name in numeric[:4]:
        changed[name] = changed[name].median()
    for name in numeric[-3:]:
        low, high = test[name].quantile([0.02, 0.98])
        changed[name] = np.where(rng.random(len(test)) < 0.5, low, high)
    # WHEN the live mean |SHAP| ranking is compared with the baseline's
    report, violations = attribution_drift(model, changed[list(model.features)], world["evaluation"].explainability)
    # THEN NDCG falls below Clarify's 0.90 and one feature_attribution_drift_check violation is reported
    assert report["ndcg"] < 0.9
    assert [v["constraint_check_type"] for v in violations] == ["feature_attribution_drift_check"]
    assert report["ranking"][0] != report["baseline_ranking"][0]


def test_ndcg_is_one_for_the_same_order_and_lower_when_the_top_feature_falls():
    base = {"a": 0.5, "b": 0.3, "c": 0.2}
    assert ndcg(base, {"a": 5, "b": 3, "c": 1}) == pytest.approx(1.0)
    assert ndcg(base, {"a": 0.0, "b": 3, "c": 1}) < 0.9


# -- entry points ------------------------------------------------------------------------------------------------
def _summary(out: Path) -> dict:
    document = json.loads((out / "summary.json").read_text())
    assert set(document) == SUMMARY_KEYS
    return document


def test_data_quality_job_names_the_two_shifted_features(world, tmp_path, capsys):
    # GIVEN a capture window of held-out rows with Income and Seniority shifted
    capture = write_lines(tmp_path / "capture", capture_lines(world["model"], shifted(world["test"])))
    out = tmp_path / "out"
    # WHEN the data-quality job runs
    code = _load("monitor_data_quality").main([
        "--input-dir", str(capture), "--baseline-dir", str(world["root"] / "baseline"), "--output-dir", str(out),
        "--endpoint", "credit", "--schedule", "hourly"])
    # THEN it exits 0 with drift violations naming exactly those two, reports beside the summary, EMF on stdout
    assert code == 0
    summary = _summary(out)
    assert summary["Check"] == "data_quality" and summary["Records"] == len(world["test"])
    assert sorted(summary["FlaggedFeatures"]) == ["Income", "Seniority"]
    assert summary["ViolationTypes"] == ["baseline_drift_check"]
    assert summary["Metrics"]["feature_baseline_drift_Income"] > 0.1
    for name in ("statistics.json", "constraints.json", "constraint_violations.json", "drift_report.json"):
        json.loads((out / name).read_text())
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert emf == [json.loads(line) for line in (out / "cloudwatch_metrics.jsonl").read_text().splitlines()]
    assert emf[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "aws/sagemaker/Endpoints/data-metrics"


def test_data_quality_job_on_clean_traffic_finds_nothing(world, tmp_path):
    capture = write_lines(tmp_path / "capture", capture_lines(world["model"], world["test"]))
    out = tmp_path / "out"
    code = _load("monitor_data_quality").main([
        "--input-dir", str(capture), "--baseline-dir", str(world["root"] / "baseline"), "--output-dir", str(out),
        "--endpoint", "credit", "--schedule", "hourly"])
    assert code == 0
    assert _summary(out)["Violations"] == 0, (out / "constraint_violations.json").read_text()


@pytest.mark.parametrize("job", ["monitor_data_quality", "monitor_model_quality", "monitor_bias"])
def test_an_empty_window_is_records_zero_not_an_error(world, tmp_path, job):
    # GIVEN no capture at all in the window (the directory is empty)
    (tmp_path / "in").mkdir()
    root, out = world["root"], tmp_path / "out"
    args = {
        "monitor_data_quality": ["--input-dir", str(tmp_path / "in"), "--baseline-dir", str(root / "baseline"),
                                 "--schedule", "hourly"],
        "monitor_model_quality": ["--merged-dir", str(tmp_path / "in"), "--constraints-dir",
                                  str(root / "evaluation"), "--problem-type", "BinaryClassification"],
        "monitor_bias": ["--merged-dir", str(tmp_path / "in"), "--baseline-dir", str(root / "evaluation"),
                         "--model-dir", str(root / "model"), "--config-dir", str(root / "config")],
    }[job]
    # WHEN the job runs THEN it succeeds with Records 0 and no violation
    assert _load(job).main([*args, "--output-dir", str(out)]) == 0
    summary = _summary(out)
    assert (summary["Records"], summary["Violations"]) == (0, 0)


def test_model_quality_job_on_merged_traffic(world, tmp_path):
    y = labels_of(world).astype(int)
    merged = write_lines(tmp_path / "merged", capture_lines(world["model"], world["test"], y))
    out = tmp_path / "out"
    job = _load("monitor_model_quality")
    assert job.main(["--merged-dir", str(merged), "--constraints-dir", str(world["root"] / "evaluation"),
                     "--output-dir", str(out), "--problem-type", "BinaryClassification"]) == 0
    summary = _summary(out)
    assert summary["Check"] == "model_quality" and summary["Violations"] == 0
    assert summary["Metrics"]["auc"] == pytest.approx(world["evaluation"].summary["auc"], abs=1e-4)
    statistics = json.loads((out / "statistics.json").read_text())
    expected = binary_classification_statistics(y, world["model"].predict_proba(world["test"]).round(6), 0.5)
    assert statistics["binary_classification_metrics"]["f1"] == expected["binary_classification_metrics"]["f1"]


def test_bias_job_flags_the_injected_bias(world, tmp_path):
    test = world["test"]
    scores = biased_scores(world["model"], test)
    merged = write_lines(tmp_path / "merged", capture_lines(world["model"], test, labels_of(world), scores))
    out, root = tmp_path / "out", world["root"]
    assert _load("monitor_bias").main([
        "--merged-dir", str(merged), "--baseline-dir", str(root / "evaluation"), "--model-dir", str(root / "model"),
        "--config-dir", str(root / "config"), "--output-dir", str(out)]) == 0
    summary = _summary(out)
    assert summary["Check"] == "bias_attribution" and summary["FlaggedFeatures"] == ["Age"]
    assert summary["ViolationTypes"] == ["bias_drift_check"]
    assert summary["Metrics"]["disparate_impact_Age"] < 0.8 and math.isfinite(summary["Metrics"]["attribution_ndcg"])


def test_bad_input_exits_1_with_a_message_naming_the_file(world, tmp_path):
    # GIVEN a baseline directory without the baseline files, run as SageMaker runs it (a subprocess)
    (tmp_path / "capture").mkdir()
    (tmp_path / "capture" / "x.jsonl").write_text("{}\n")
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "ml" / "monitor_data_quality.py"), "--input-dir", str(tmp_path / "capture"),
         "--baseline-dir", str(tmp_path / "nothing"), "--output-dir", str(tmp_path / "out"), "--schedule", "s"],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "statistics.json" in proc.stderr and "Traceback" not in proc.stderr


# -- CLI ---------------------------------------------------------------------------------------------------------
def test_cli_model_quality_and_bias_write_their_reports(world, tmp_path, capsys):
    from sagestep.cli import main

    # GIVEN merged held-out traffic with married under-25s all declined
    test, root = world["test"], world["root"]
    merged = write_lines(tmp_path / "merged", capture_lines(world["model"], test, labels_of(world),
                                                            biased_scores(world["model"], test)))
    # WHEN `sagestep monitor model-quality` and `sagestep monitor bias` run
    assert main(["monitor", "model-quality", "--merged", str(merged), "--constraints",
                 str(root / "evaluation" / "model_quality_constraints.json"), "--problem-type",
                 "BinaryClassification", "--output", str(tmp_path / "mq")]) == 0
    assert main(["monitor", "bias", "--merged", str(merged), "--baseline-dir", str(root / "evaluation"),
                 "--model", str(root / "model" / "model.tar.gz"), "--dataset-config",
                 str(REPO_ROOT / "ml" / "config" / "credit_data.yaml"), "--output", str(tmp_path / "bias")]) == 0
    # THEN both write Model Monitor / Clarify-shaped documents, and the bias violations name Age
    statistics = json.loads((tmp_path / "mq" / "statistics.json").read_text())
    assert statistics["dataset"]["item_count"] == len(test)
    assert "violations" in json.loads((tmp_path / "mq" / "constraint_violations.json").read_text())
    bias = json.loads((tmp_path / "bias" / "constraint_violations.json").read_text())["violations"]
    assert {v["facet"] for v in bias} == {"Age"}
    assert "Age" in capsys.readouterr().out


def test_cli_model_quality_with_constraints_of_the_wrong_problem_type_is_a_user_error(world, tmp_path, capsys):
    from sagestep.cli import main

    merged = write_lines(tmp_path / "merged", capture_lines(world["model"], world["test"].head(5),
                                                            labels_of(world)[:5]))
    code = main(["monitor", "model-quality", "--merged", str(merged), "--constraints",
                 str(world["root"] / "evaluation" / "model_quality_constraints.json"), "--problem-type", "Regression",
                 "--output", str(tmp_path / "out")])
    assert code != 0
    assert "regression_constraints" in capsys.readouterr().err
