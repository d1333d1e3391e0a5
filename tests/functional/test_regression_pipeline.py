"""Path tests of the training state machine with a Regression (modeldata Chicago, real rows), and the drift and
model-quality checks of a regressor trained on early years and monitored on later ones."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
import yaml

from sagestep.local import LocalRuntime
from tests.conftest import REPO_ROOT, load_event

CHICAGO = REPO_ROOT / "data" / "chicago" / "chicago.csv"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory):
    with LocalRuntime(REPO_ROOT, workspace=tmp_path_factory.mktemp("workspace"), time_scale=0.001,
                      parameter_overrides={"DeployOnApprovalState": "DISABLED",
                                           "RetrainOnNewDataState": "DISABLED"}) as rt:
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
