"""Path tests of the training state machine with a Regression (modeldata Chicago, real rows), and the drift and
model-quality checks of a regressor trained on early years and monitored on later ones."""

from __future__ import annotations

import copy
import dataclasses

import pandas as pd
import pytest
import yaml

from sagestep.local import LocalRuntime
from sagestep.local.traffic import Traffic, load_rows
from sagestep.registry import approvals
from sagestep.training.metrics import regression_statistics
from tests.conftest import BY_HAND, REPO_ROOT, load_event

CHICAGO = REPO_ROOT / "data" / "chicago" / "chicago.csv"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory):
    with LocalRuntime(REPO_ROOT, workspace=tmp_path_factory.mktemp("workspace"), time_scale=0.001,
                      parameter_overrides=BY_HAND) as rt:
        yield rt


@pytest.fixture(scope="module")
def chicago() -> pd.DataFrame:
    return pd.read_csv(CHICAGO)


def chicago_config() -> dict:
    return yaml.safe_load((REPO_ROOT / "ml" / "config" / "chicago.yaml").read_text())


def stage(runtime: LocalRuntime, name: str, frame: pd.DataFrame, config: dict) -> dict:
    bucket = runtime.bucket("DataBucket")
    s3 = runtime.client("s3")
    s3.put_object(Bucket=bucket, Key=f"datasets/{name}/{name}.csv", Body=frame.to_csv(index=False).encode())
    s3.put_object(Bucket=bucket, Key=f"configs/{name}.yaml", Body=yaml.safe_dump(config).encode())
    execution_input = copy.deepcopy(load_event("training_state_machine_chicago"))
    execution_input["DataS3Uri"] = f"s3://{bucket}/datasets/{name}/"
    execution_input["DatasetConfigS3Uri"] = f"s3://{bucket}/configs/{name}.yaml"
    return execution_input


def test_chicago_regressor_beats_the_naive_seasonal_forecast_and_is_registered(runtime, chicago):
    # GIVEN the Chicago ridership rows and their Regression config (time-ordered split on date)
    execution_input = stage(runtime, "chicago", chicago, chicago_config())
    # WHEN the training state machine runs with the sample hyperparameters
    record = runtime.run("TrainingStateMachine", execution_input, name="chicago-regression")
    # THEN the gate compared it with the naive same-weekday-last-year forecast and it was registered
    assert record.status == "SUCCEEDED", record.cause
    sagemaker = runtime.client("sagemaker")
    package = sagemaker.describe_model_package(ModelPackageName=record.output["Registered"]["ModelPackageArn"])
    lineage = package["CustomerMetadataProperties"]
    assert package["ModelPackageGroupName"] == "sagestep-dev-chicago"
    assert float(lineage["TestRmse"]) > 0 and "TestAuc" not in lineage
    summary = runtime.read_json(record.output["Run"]["OutputS3Uri"] + "evaluation/summary.json")
    assert summary["problem_type"] == "Regression"
    assert summary["naive_rows"] == summary["n_test"]  # every test day has its day 364 days earlier
    assert summary["error_ratio_to_naive"] <= 1.0
    # AND its model-quality constraints are in Model Monitor's regression format
    constraints = runtime.read_json(package["ModelMetrics"]["ModelQuality"]["Constraints"]["S3Uri"])
    assert set(constraints["regression_constraints"]) == {"mae", "rmse", "r2"}
    assert constraints["regression_constraints"]["rmse"]["comparison_operator"] == "GreaterThanThreshold"
    statistics = runtime.read_json(package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"])
    assert statistics["regression_metrics"]["rmse"]["value"] == pytest.approx(float(lineage["TestRmse"]), rel=1e-5)
    assert lineage["ProblemType"] == "Regression"
    # AND the run's report shows a regressor's evidence (no ROC): predicted vs actual, residuals over time
    run_summary = runtime.read_json(lineage["RunSummaryS3Uri"])
    assert run_summary["metrics"]["rmse"] == pytest.approx(float(lineage["TestRmse"]), rel=1e-5)
    html = runtime.local_path(lineage["ReportS3Uri"]).read_text()
    assert 'id="residuals"' in html and 'id="actual"' in html and 'id="roc"' not in html
    assert any("Test RMSE" in n["Message"] for n in runtime.notifications())


def test_the_chicago_regressor_deploys_serves_predictions_and_is_monitored_with_ground_truth(runtime):
    # GIVEN the regressor registered by the test above, approved
    sagemaker = runtime.client("sagemaker")
    packages = sagemaker.list_model_packages(ModelPackageGroupName="sagestep-dev-chicago")["ModelPackageSummaryList"]
    assert packages, "test_chicago_regressor_beats_the_naive_seasonal_forecast_and_is_registered registers it first"
    arn = packages[0]["ModelPackageArn"]
    approvals.decide(sagemaker, arn, "approve", by="test", reason="regression path")
    # WHEN the deployment machine deploys it (smoke test included) and 300 of its held-out days are sent as traffic,
    # their true ridership as ground truth
    deployment = runtime.run("DeploymentStateMachine", {"ModelPackageArn": arn}, name="deploy-chicago")
    assert deployment.status == "SUCCEEDED", deployment.cause
    lineage = sagemaker.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"]
    run_prefix = lineage["ReportS3Uri"].rsplit("report/", 1)[0]
    rows = load_rows(runtime.local_path(run_prefix + "preprocess/test/test.csv"),
                     dataset_config=REPO_ROOT / "ml" / "config" / "chicago.yaml")
    days = 300
    rows = dataclasses.replace(rows, instances=rows.instances[:days], labels=rows.labels[:days])
    report = Traffic(runtime, "sagestep-dev-chicago", rows, rate=500, labels_after=0.0, run_id="days").send(count=days)
    assert report.errors == 0, report.last_error
    # AND the monitoring machine merges them with the captured predictions
    execution_input = {**load_event("monitoring_state_machine_hourly"), "WindowHours": 2, "EndOffsetHours": 1,
                       "MergeStartOffset": "-P1D", "MergeEndOffset": "-PT0S", "ModelLine": "chicago"}
    record = runtime.run("MonitoringStateMachine", execution_input, name="monitor-chicago")
    # THEN model quality ran as a Regression (mae, mse, rmse, r2) on exactly the evaluated predictions of those days
    assert record.status == "SUCCEEDED", record.cause
    (line,) = record.output["Results"]
    assert line["Merged"] == days, line
    assert "Skip bias and attribution" in record.states_entered()
    statistics = runtime.read_json(line["ReportS3Uri"] + "model-quality/statistics.json")
    scores = pd.read_csv(runtime.local_path(run_prefix + "evaluation/scores.csv")).head(days)
    expected = regression_statistics(scores["label"], scores["score"])["regression_metrics"]
    assert set(statistics["regression_metrics"]) == {"mae", "mse", "rmse", "r2"}
    for metric in ("mae", "rmse", "r2"):
        assert statistics["regression_metrics"][metric]["value"] == pytest.approx(expected[metric]["value"], rel=1e-6)
    # AND the real trend shows as data drift against the training years' baseline (2014–15 vs 2001–2011)
    assert line["Status"] == "VIOLATIONS" and any("Clark_Lake" in r for r in line["Reasons"]), line
