"""Path tests of statemachines/training.asl.json in the local runtime, on the real bundled datasets."""

from __future__ import annotations

import copy
import json

import pandas as pd
import pytest
import yaml

from sagestep.registry import approvals
from sagestep.local import LocalRuntime
from tests.conftest import BY_HAND, REPO_ROOT, load_event


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory):
    with LocalRuntime(REPO_ROOT, workspace=tmp_path_factory.mktemp("workspace"), time_scale=0.001, parameter_overrides=BY_HAND) as rt:
        yield rt


def stage(runtime: LocalRuntime, name: str, frame: pd.DataFrame, config: dict) -> dict:
    """Put a dataset and its config in the data bucket; return the execution input pointing at them."""
    bucket = runtime.bucket("DataBucket")
    s3 = runtime.client("s3")
    s3.put_object(Bucket=bucket, Key=f"datasets/{name}/{name}.csv", Body=frame.to_csv(index=False).encode())
    s3.put_object(Bucket=bucket, Key=f"configs/{name}.yaml", Body=yaml.safe_dump(config).encode())
    execution_input = copy.deepcopy(load_event("training_state_machine_credit_data"))
    execution_input["DataS3Uri"] = f"s3://{bucket}/datasets/{name}/"
    execution_input["DatasetConfigS3Uri"] = f"s3://{bucket}/configs/{name}.yaml"
    return execution_input


def read_with_sagemaker_sdk(runtime: LocalRuntime, package_arn: str) -> tuple:
    """The package (sagemaker-core's typed ModelPackage) and its data-quality baselines (Model Monitor's Statistics and
    Constraints, from S3), read by the SDK from the local cloud."""
    import os

    import boto3
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.model_monitor.monitoring_files import Constraints, Statistics
    from sagemaker.core.resources import ModelPackage

    saved = os.environ.get("AWS_ENDPOINT_URL")
    os.environ["AWS_ENDPOINT_URL"] = runtime.url
    try:
        boto_session = boto3.Session(region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
        package = ModelPackage.get(model_package_name=package_arn, session=boto_session, region="us-east-1")
        baselines = package.drift_check_baselines.model_data_quality
        session = Session(boto_session=boto_session)
        return (package, Statistics.from_s3_uri(baselines.statistics.s3_uri, sagemaker_session=session),
                Constraints.from_s3_uri(baselines.constraints.s3_uri, sagemaker_session=session))
    finally:
        if saved is None:
            os.environ.pop("AWS_ENDPOINT_URL", None)
        else:
            os.environ["AWS_ENDPOINT_URL"] = saved


def credit_config() -> dict:
    return yaml.safe_load((REPO_ROOT / "ml" / "config" / "credit_data.yaml").read_text())


def test_happy_path_registers_an_explained_model_pending_approval(runtime, credit_data):
    # GIVEN the real credit data and its config
    execution_input = stage(runtime, "credit_data", credit_data, credit_config())
    # WHEN the training state machine runs
    record = runtime.run("TrainingStateMachine", execution_input, name="happy-path")
    # THEN a model package is registered, pending approval, with metrics and lineage
    assert record.status == "SUCCEEDED", record.cause
    assert record.states_entered()[-1] == "Registered"
    sagemaker = runtime.client("sagemaker")
    package = sagemaker.describe_model_package(ModelPackageName=record.output["Registered"]["ModelPackageArn"])
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    lineage = package["CustomerMetadataProperties"]
    assert float(lineage["TestAuc"]) >= 0.80
    assert lineage["ExecutionArn"] == record.execution_arn
    assert lineage["DataS3Uri"] == execution_input["DataS3Uri"]
    assert set(package["ModelMetrics"]) == {"ModelQuality", "ModelDataQuality", "Bias", "Explainability"}
    # AND it is in the credit_data model line's group, created by this first run of the line
    assert package["ModelPackageGroupName"] == "sagestep-dev-credit-data" and lineage["ModelLine"] == "credit-data"
    # AND the run explains itself: report.html and summary.json, registered on the package
    summary = runtime.read_json(lineage["RunSummaryS3Uri"])
    assert summary["gate"]["passed"] is True and summary["metrics"]["auc"] == pytest.approx(float(lineage["TestAuc"]))
    assert runtime.client("s3").head_object(**dict(zip(("Bucket", "Key"), lineage["ReportS3Uri"][5:].split("/", 1))))
    statistics = runtime.read_json(package["ModelMetrics"]["ModelDataQuality"]["Statistics"]["S3Uri"])
    assert {f["name"] for f in statistics["features"]} >= {"Income", "Age", "Home"}
    assert any("registered" in n["Subject"] for n in runtime.notifications())
    # AND the SageMaker SDK (existing tooling, issue 18) reads the package and its drift baselines from the cloud
    sdk_package, sdk_statistics, sdk_constraints = read_with_sagemaker_sdk(runtime, package["ModelPackageArn"])
    assert sdk_package.customer_metadata_properties["ExecutionArn"] == record.execution_arn
    assert {f["name"] for f in sdk_statistics.body_dict["features"]} == {f["name"] for f in statistics["features"]}
    assert sdk_constraints.body_dict["monitoring_config"]["evaluate_constraints"] == "Enabled"
    # AND an approval records who, when and why
    result = approvals.decide(sagemaker, package["ModelPackageArn"], "approve", by="Ana Risk", reason="AUC and fairness reviewed")
    assert result["ModelApprovalStatus"] == "Approved"
    approved = sagemaker.describe_model_package(ModelPackageName=package["ModelPackageArn"])["CustomerMetadataProperties"]
    assert approved["ApprovedBy"] == "Ana Risk" and approved["TestAuc"] == lineage["TestAuc"]


def test_gate_refuses_when_the_auc_threshold_is_raised(runtime, credit_data):
    config = credit_config()
    config["thresholds"]["min_auc"] = 0.99
    record = runtime.run("TrainingStateMachine", stage(runtime, "credit_strict", credit_data, config), name="gate-refusal")
    assert record.status == "FAILED"
    assert record.error == "QualityGateRefused"
    assert "0.99" in record.cause
    assert "Notify gate refusal" in record.states_entered()


def test_training_script_failure_ends_in_training_failed_with_the_reason(runtime, credit_data):
    execution_input = stage(runtime, "credit_data", credit_data, credit_config())
    execution_input["Hyperparameters"]["num_leaves"] = "many"
    record = runtime.run("TrainingStateMachine", execution_input, name="bad-hyperparameter")
    assert record.status == "FAILED"
    assert record.states_entered()[-2:] == ["Notify failure", "Training failed"]
    assert "num_leaves" in record.cause and "Failed" in record.cause


def test_dataset_without_target_column_stops_at_validation_with_a_clear_message(runtime, credit_data):
    execution_input = stage(runtime, "credit_no_target", credit_data.drop(columns=["Status"]), credit_config())
    record = runtime.run("TrainingStateMachine", execution_input, name="missing-target")
    assert record.status == "FAILED"
    assert "Train model" not in record.states_entered()
    assert "Status" in record.cause
    messages = [n["Message"] for n in runtime.notifications()]
    assert any("missing-target" in m and "Status" in m for m in messages)


def test_german_credit_runs_by_changing_only_the_config_and_throttling_is_retried(runtime, german_credit):
    config = yaml.safe_load((REPO_ROOT / "ml" / "config" / "german_credit.yaml").read_text())
    runtime.inject_fault("sagemaker", "createTrainingJob", "ThrottlingException", times=1)
    record = runtime.run("TrainingStateMachine", stage(runtime, "german_credit", german_credit, config), name="german-credit")
    assert record.status == "SUCCEEDED", record.cause
    retried = [e for e in record.history if e["type"] == "TaskFailed"]
    assert retried and retried[0]["taskFailedEventDetails"]["error"] == "SageMaker.AmazonSageMakerException"
    train_jobs = {json.loads(e["taskScheduledEventDetails"]["parameters"]).get("TrainingJobName") for e in record.history if "taskScheduledEventDetails" in e}
    assert {name for name in train_jobs if name} and all(name.endswith(("-train-0", "-train-1")) for name in train_jobs if name)
