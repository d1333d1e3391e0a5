"""The HTML training report, built from a run directory made by the library functions the ml/ jobs call, on the
real credit_data rows with the scores of a simple logistic regression."""

from __future__ import annotations

import io
import json
import re
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from sagestep.training.config import load_dataset_config
from sagestep.training.explain import summarize_contributions
from sagestep.training.fairness import fairness_report
from sagestep.training.gate import fairness_key
from sagestep.training.metrics import binary_classification_statistics, calibration, credit_metrics, model_quality_constraints
from sagestep.training.model import BIAS_COLUMN
from sagestep.monitoring.statistics import compute_statistics, feature_types_from_config
from sagestep.training.preprocess import file_record, prepare_data, split_data, validate_data
from sagestep.training.report import render_training_report, write_training_report

EXECUTION_ARN = "arn:aws:states:us-east-1:123456789012:execution:sagestep-local-TrainingStateMachine:run-42"
PACKAGE_ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/credit-data/7"
JOB = "run-42-1a2b3c4d-train-0"
DATA_URI = "s3://sagestep-dev-data-123456789012/datasets/credit_data/"
EXECUTION_INPUT = {"DataS3Uri": DATA_URI,
                   "DatasetConfigS3Uri": "s3://sagestep-dev-data-123456789012/configs/credit_data.yaml",
                   "Algorithm": "lightgbm", "Hyperparameters": {"num_round": "200"}}


def _write_json(path: Path, document: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")


def _model_archive(path: Path, meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps(meta).encode()
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("./model_meta.json")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, credit_data: pd.DataFrame, repo_root: Path) -> Path:
    """runs/<execution>/ with preprocess/, train/, evaluation/ and baseline/ as the jobs lay them out."""
    root = tmp_path_factory.mktemp("runs") / "run-42"
    config = load_dataset_config(repo_root / "ml" / "config" / "credit_data.yaml")
    raw_file = repo_root / "data" / "credit_data" / "credit_data.csv"

    _write_json(root / "preprocess/report/validation_report.json",
                validate_data({"credit_data/credit_data.csv": credit_data}, config))
    (root / "preprocess/config").mkdir(parents=True)
    (root / "preprocess/config/dataset_config.json").write_text(config.to_json(), encoding="utf-8")
    splits = split_data(prepare_data(credit_data, config), config)
    _write_json(root / "preprocess/report/manifest.json", {
        "version": 1, "dataset": config.name,
        "code": {"version": "0.1.0", "sha256": "c0de" * 16},
        "inputs": [file_record(raw_file, raw_file.parents[1], rows=len(credit_data))],
        "split": {"method": splits.method, "seed": config.split.seed},
        "outputs": {name: {"path": f"{name}/{name}.csv", "sha256": f"{i}" * 64, "rows": len(part)}
                    for i, (name, part) in enumerate(splits.items())},
    })

    numeric = list(config.features.numeric)
    train, test = splits.train, splits.test
    means = train[numeric].mean()
    x_train, x_test = train[numeric].fillna(means), test[numeric].fillna(means)
    centre, scale = x_train.mean(), x_train.std()
    model = LogisticRegression(max_iter=500).fit((x_train - centre) / scale, train[config.target])
    z_test = (x_test - centre) / scale
    y, scores = test[config.target].to_numpy(), model.predict_proba(z_test)[:, 1]
    threshold = config.thresholds.decision_threshold

    statistics = binary_classification_statistics(y, scores, threshold)
    statistics["credit_metrics"] = credit_metrics(y, scores)
    statistics["calibration"] = calibration(y, scores)
    bias = fairness_report(test, y, scores, config, threshold=threshold)
    contributions = pd.DataFrame(z_test.to_numpy() * model.coef_[0], columns=numeric)
    contributions[BIAS_COLUMN] = model.intercept_[0]
    m = statistics["binary_classification_metrics"]
    summary = {"dataset": config.name, "algorithm": "logistic", "auc": m["auc"]["value"],
               **statistics["credit_metrics"], "f1": m["f1"]["value"], "n_test": len(test),
               "positive_rate": float(y.mean()), "decision_threshold": threshold,
               "min_auc": config.thresholds.min_auc}
    for attr in bias["attributes"]:
        summary[fairness_key("disparate_impact", attr["name"])] = attr["disparate_impact"]
    _write_json(root / "evaluation/evaluation.json", statistics)
    _write_json(root / "evaluation/model_quality_constraints.json",
                model_quality_constraints(statistics, thresholds={"auc": config.thresholds.min_auc}))
    _write_json(root / "evaluation/bias.json", bias)
    _write_json(root / "evaluation/explainability.json", summarize_contributions(contributions, "logistic"))
    _write_json(root / "evaluation/summary.json", summary)
    pd.DataFrame({"id": test[config.id_column], "label": y, "score": scores}).to_csv(
        root / "evaluation/scores.csv", index=False)

    _model_archive(root / "train" / JOB / "output/model.tar.gz", {
        "algorithm": "logistic", "hyperparameters": {"algorithm": "logistic", "num_round": 200, "seed": 0},
        "best_iteration": 57, "metrics": {"validation_auc": 0.81}, "threshold": threshold})
    _write_json(root / "baseline/statistics.json", compute_statistics(
        train[list(config.features.all)], feature_types_from_config(numeric, config.features.categorical)))
    return root


def succeeded(gate: dict) -> dict:
    state = {**EXECUTION_INPUT, "Run": {"JobPrefix": "run-42-1a2b3c4d", "OutputS3Uri": "s3://artifacts/runs/run-42/",
                                        "HyperParameters": {"algorithm": "lightgbm", "num_round": "200"}},
             "Training": {"JobName": JOB, "ModelDataUrl": f"s3://artifacts/runs/run-42/train/{JOB}/output/model.tar.gz",
                          "HyperParameters": {"algorithm": "lightgbm", "num_round": "200"}, "Metrics": []},
             "Gate": gate, "Registered": {"ModelPackageArn": PACKAGE_ARN}}
    return {"execution": {"executionArn": EXECUTION_ARN, "name": "run-42", "status": "SUCCEEDED",
                          "input": json.dumps(EXECUTION_INPUT), "output": json.dumps(state), "error": None,
                          "cause": None, "startDate": "2026-05-01T10:00:00+00:00",
                          "stopDate": "2026-05-01T10:07:05+00:00"},
            "history": []}


def refused(reasons: list[str]) -> dict:
    """As the state machine ends a refusal: FAILED, no output; the gate's answer is in the history."""
    gate = {"Passed": False, "Reasons": reasons, "ChampionModelPackageArn": None, "CustomerMetadataProperties": {}}
    exited = {**EXECUTION_INPUT, "Gate": gate}
    return {"execution": {"executionArn": EXECUTION_ARN, "name": "run-42", "status": "FAILED",
                          "input": json.dumps(EXECUTION_INPUT), "output": None, "error": "QualityGateRefused",
                          "cause": json.dumps(reasons), "startDate": "2026-05-01T10:00:00+00:00",
                          "stopDate": "2026-05-01T10:06:00+00:00"},
            "history": [{"id": 40, "type": "TaskStateExited", "previousEventId": 39,
                         "stateExitedEventDetails": {"name": "Quality gate", "output": json.dumps(exited)}}]}


def failed_in(state: str, cause: str) -> dict:
    return {"execution": {"executionArn": EXECUTION_ARN, "name": "run-42", "status": "FAILED",
                          "input": json.dumps(EXECUTION_INPUT), "output": None,
                          "error": "SageMaker.AmazonSageMakerException", "cause": cause,
                          "startDate": "2026-05-01T10:00:00+00:00", "stopDate": "2026-05-01T10:03:00+00:00"},
            "history": [{"id": 30, "type": "TaskStateEntered", "previousEventId": 29,
                         "stateEnteredEventDetails": {"name": state}},
                        {"id": 31, "type": "TaskScheduled", "previousEventId": 30},
                        {"id": 33, "type": "TaskFailed", "previousEventId": 31,
                         "taskFailedEventDetails": {"error": "SageMaker.AmazonSageMakerException"}}]}


def partial_copy(run_dir: Path, target: Path, *keep: str) -> Path:
    for name in keep:
        shutil.copytree(run_dir / name, target / name)
    return target


@pytest.fixture(scope="module")
def complete_report(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    reasons = ["disparate impact of Age is 0.708, outside [0.8, 1.25]", "test AUC 0.7000 < min_auc 0.8000"]
    out = tmp_path_factory.mktemp("report") / "nested" / "report.html"
    written = write_training_report(run_dir, refused(reasons), out)
    return written, written.read_text(encoding="utf-8")


def test_complete_run_report_shows_every_section_and_the_key_numbers(run_dir: Path, complete_report):
    # GIVEN a run with every output and its evaluation summary
    path, html = complete_report
    summary = json.loads((run_dir / "evaluation/summary.json").read_text())

    # WHEN the report was written (fixture) THEN it is at the requested path, with every section
    assert path.is_file() and path.name == "report.html"
    for section in ("gate", "roc", "distribution", "calibration", "shap", "quality", "fairness", "profile",
                    "checks", "lineage"):
        assert f'<section id="{section}">' in html
    # AND the cards and the ROC legend show the test AUC, KS and Gini of summary.json
    assert html.count(f"{summary['auc']:.3f}") >= 2
    assert f"{summary['ks']:.3f}" in html and f"{summary['gini']:.3f}" in html
    assert f"{summary['n_test']:,}" in html
    # AND four plots are inline PNGs, one sparkline per numeric feature
    assert html.count('src="data:image/png;base64,') == 4
    assert html.count('<svg class="spark"') == 9
    assert "Not available" not in html


def test_fairness_table_lists_each_protected_attribute_and_marks_the_band(run_dir: Path, complete_report):
    # GIVEN the run's bias.json
    _, html = complete_report
    bias = json.loads((run_dir / "evaluation/bias.json").read_text())
    fairness = html[html.index('<section id="fairness">'):html.index('<section id="profile">')]

    # THEN each protected attribute has a row whose DI cell is marked pass or fail as bias.json says
    for attr in bias["attributes"]:
        verdict = "pass" if attr["within_bounds"] else "fail"
        assert f"<b>{attr['name']}</b>" in fairness
        assert re.search(rf'<td class="num di {verdict}">{attr["disparate_impact"]:.3f}</td>', fairness)
        assert f"{attr['n_privileged']} / {attr['n_unprivileged']}" in fairness
    assert "[0.8, 1.25]" in fairness


def test_refused_gate_shows_every_reason_from_the_history(complete_report):
    # GIVEN an execution that FAILED with QualityGateRefused and no output (the gate's answer is in the history)
    _, html = complete_report

    # THEN the verdict says refused and each reason is listed
    assert "Gate refused" in html
    assert "<li>disparate impact of Age is 0.708, outside [0.8, 1.25]</li>" in html
    assert "<li>test AUC 0.7000 &lt; min_auc 0.8000</li>" in html


def test_lineage_names_the_execution_data_hashes_and_model(run_dir: Path, complete_report, repo_root: Path):
    # GIVEN the preprocess manifest with the SHA-256 of the raw data file
    _, html = complete_report
    lineage = html[html.index('<section id="lineage">'):]
    raw_sha = file_record(repo_root / "data" / "credit_data" / "credit_data.csv")["sha256"]

    # THEN the lineage shows the execution ARN, the data URI and its hash, the model archive and hyperparameters
    for text in (EXECUTION_ARN, DATA_URI, raw_sha, f"train/{JOB}/output/model.tar.gz", "num_round", "2026-05-01 10:00:00 UTC"):
        assert text in lineage


def test_report_is_self_contained(complete_report):
    # GIVEN the complete report THEN it loads nothing from elsewhere: no script, stylesheet link or remote source
    _, html = complete_report
    assert "<script" not in html and "<link" not in html
    assert not re.search(r'(src|href)="(?!data:|#)', html)


def test_passed_gate_shows_the_verdict_and_the_registered_package(run_dir: Path, tmp_path: Path):
    # GIVEN a succeeded execution whose gate passed, on a run with preprocess outputs only (no plots to draw)
    partial = partial_copy(run_dir, tmp_path / "run", "preprocess")
    gate = {"Passed": True, "Reasons": [], "ChampionModelPackageArn": None,
            "CustomerMetadataProperties": {"TestAuc": "0.850000"}}

    # WHEN the report is rendered
    html = render_training_report(partial, succeeded(gate))

    # THEN the header says passed and the gate section names the registered model package
    assert "Gate passed" in html and "Gate refused" not in html
    assert PACKAGE_ARN in html
    assert "Duration" in html and "7m 05s" in html


def test_run_without_evaluation_renders_with_a_missing_note_per_section(run_dir: Path, tmp_path: Path):
    # GIVEN a run that failed in "Evaluate model": preprocess/ and train/ exist, evaluation/ and baseline/ do not
    partial = partial_copy(run_dir, tmp_path / "run", "preprocess", "train")
    execution = failed_in("Evaluate model", "run-42-1a2b3c4d-eval-0 Failed: AlgorithmError: exit code 1")

    # WHEN the report is rendered
    html = render_training_report(partial, execution)

    # THEN it says where the run failed and why, and each evaluation section says which file is missing
    assert "Run failed" in html and "“Evaluate model”" in html
    assert "AlgorithmError: exit code 1" in html
    assert "The quality gate did not run" in html
    for missing in ("evaluation/scores.csv was not found", "evaluation/explainability.json was not found",
                    "evaluation/bias.json was not found", "baseline/statistics.json was not found"):
        assert missing in html
    assert "the execution ended FAILED at “Evaluate model”" in html
    # AND what exists is still shown: the data checks and the lineage from preprocess and the model archive
    assert "non empty" in html and "duplicate ids" in html
    assert JOB in html and 'src="data:image/png' not in html


def test_unreadable_or_odd_files_are_named_instead_of_raising(run_dir: Path, tmp_path: Path):
    # GIVEN a run whose bias.json is truncated, summary.json is not an object and explainability.json has an odd shape
    partial = partial_copy(run_dir, tmp_path / "run", "preprocess")
    (partial / "evaluation").mkdir()
    (partial / "evaluation/bias.json").write_text('{"attributes": [', encoding="utf-8")
    (partial / "evaluation/summary.json").write_text("[0.85]", encoding="utf-8")
    (partial / "evaluation/explainability.json").write_text('{"features": [1, 2]}', encoding="utf-8")

    # WHEN the report is rendered
    html = render_training_report(partial, refused(["data checks failed"]))

    # THEN each section names its file and what is wrong with it
    fairness = html[html.index('<section id="fairness">'):html.index('<section id="profile">')]
    assert "evaluation/bias.json could not be read (JSONDecodeError" in fairness
    assert "evaluation/summary.json</span> could not be read (a JSON object was expected, got list)" in html
    shap = html[html.index('<section id="shap">'):html.index('<section id="quality">')]
    assert "Could not be shown: evaluation/explainability.json has an unexpected shape (AttributeError" in shap


def test_text_from_the_run_is_escaped(run_dir: Path, tmp_path: Path):
    # GIVEN a gate reason holding markup
    partial = partial_copy(run_dir, tmp_path / "run", "preprocess")

    # WHEN the report is rendered
    html = render_training_report(partial, refused(["<script>alert(1)</script> in Marital"]))

    # THEN the markup is shown as text, not run
    assert "&lt;script&gt;alert(1)&lt;/script&gt; in Marital" in html
    assert "<script>" not in html


def test_empty_run_without_execution_record_still_renders(tmp_path: Path):
    # GIVEN an empty run directory and an empty execution record
    # WHEN the report is rendered
    html = render_training_report(tmp_path, {})

    # THEN every section says what is missing and the verdict is unknown
    assert "No gate decision" in html
    assert "No execution record was given" in html
    assert "preprocess/report/validation_report.json was not found" in html


def test_missing_run_directory_is_an_error_naming_it(tmp_path: Path):
    # GIVEN a path that does not exist WHEN the report is rendered THEN the error names the path and the fix
    with pytest.raises(FileNotFoundError, match=r"run directory .*nope does not exist; pass the local copy"):
        render_training_report(tmp_path / "nope", {})


def test_roc_point_and_calibration_use_the_run_threshold_and_table(complete_report, run_dir: Path):
    # GIVEN the evaluation's calibration table and decision threshold
    _, html = complete_report
    evaluation = json.loads((run_dir / "evaluation/evaluation.json").read_text())

    summary = json.loads((run_dir / "evaluation/summary.json").read_text())

    # THEN the calibration caption quotes the stored Brier score and the header the decision threshold
    assert f"Brier score {evaluation['calibration']['brier_score']:.4f}" in html
    assert f"decision threshold <b>{summary['decision_threshold']:g}</b>" in html
    assert np.isclose(evaluation["binary_classification_metrics"]["auc"]["value"],
                      float(re.search(r"0\.\d{3}", html[html.index("Test AUC"):]).group()), atol=5e-4)
