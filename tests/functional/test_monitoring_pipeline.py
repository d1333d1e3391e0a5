"""Path tests of statemachines/monitoring.asl.json: a model trained, approved and deployed by the real pipelines,
real held-out applications as traffic (clean, then with an injected shift), labels arriving as ground truth."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from sagestep.registry import approvals
from sagestep.local import LocalRuntime
from sagestep.local.traffic import Traffic, load_rows
from tests.conftest import REPO_ROOT, load_event

ENDPOINT = "sagestep-dev-credit"


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    with LocalRuntime(REPO_ROOT, workspace=tmp_path_factory.mktemp("ws"), time_scale=0.01) as runtime:
        execution_input = load_event("training_state_machine_credit_data")
        bucket = runtime.bucket("DataBucket")
        runtime.put_file(REPO_ROOT / "data" / "credit_data" / "credit_data.csv", f"s3://{bucket}/datasets/credit_data/credit_data.csv")
        runtime.put_file(REPO_ROOT / "ml" / "config" / "credit_data.yaml", f"s3://{bucket}/configs/credit_data.yaml")
        training = runtime.run("TrainingStateMachine", execution_input, name="monitoring-train")
        assert training.status == "SUCCEEDED", training.cause
        arn = training.output["Registered"]["ModelPackageArn"]
        approvals.decide(runtime.client("sagemaker"), arn, "approve", by="test", reason="monitoring tests")
        deployment = runtime.run("DeploymentStateMachine", {"ModelPackageArn": arn}, name="monitoring-deploy")
        assert deployment.status == "SUCCEEDED", deployment.cause
        test_csv = runtime.local_path(training.output["Run"]["OutputS3Uri"]) / "preprocess" / "test" / "test.csv"
        yield runtime, load_rows(test_csv, dataset_config=REPO_ROOT / "ml" / "config" / "credit_data.yaml")


def monitoring_input(**overrides) -> dict:
    execution_input = copy.deepcopy(load_event("monitoring_state_machine_hourly"))
    # the whole current hour and the day before: traffic in these tests is seconds old
    execution_input.update(WindowHours=2, EndOffsetHours=1, MergeStartOffset="-P1D", MergeEndOffset="-PT0S", **overrides)
    return execution_input


def shifted(rows, factor: float):
    """The same real applications with incomes and amounts scaled: a known, injected drift."""
    instances = [{**r, "Income": None if r["Income"] is None else r["Income"] * factor, "Amount": r["Amount"] * factor} for r in rows.instances]
    return dataclasses.replace(rows, instances=instances)


def test_clean_traffic_raises_no_violation(deployed):
    runtime, rows = deployed
    report = Traffic(runtime, ENDPOINT, rows, rate=500, labels_after=0.0, run_id="clean").send(count=len(rows.instances))
    assert report.errors == 0, report.last_error
    record = runtime.run("MonitoringStateMachine", monitoring_input(), name="monitor-clean")
    assert record.status == "SUCCEEDED", record.cause
    assert record.states_entered()[-1] == "No violations", record.output["Report"]
    assert record.output["Context"]["CaptureFiles"] > 0 and record.output["Merge"]["Merged"] > 0


def test_drift_alerts_and_starts_retraining_then_cool_down_suppresses_it(deployed):
    runtime, rows = deployed
    report = Traffic(runtime, ENDPOINT, shifted(rows, 3.0), rate=500, labels_after=0.0, run_id="drift").send(count=2 * len(rows.instances))
    assert report.errors == 0, report.last_error
    record = runtime.run("MonitoringStateMachine", monitoring_input(), name="monitor-drift")
    assert record.status == "SUCCEEDED", record.cause
    assert "Alert" in record.states_entered() and "Start retraining" in record.states_entered()
    reasons = " ".join(record.output["Report"]["Reasons"])
    assert "Income" in reasons or "Amount" in reasons
    alert = [n for n in runtime.notifications() if "violations" in (n["Subject"] or "")]
    assert alert and "monitoring/" in alert[-1]["Message"]
    # AND a second drift alert inside the cool-down does not start another retraining
    again = runtime.run("MonitoringStateMachine", monitoring_input(), name="monitor-drift-again")
    assert again.status == "SUCCEEDED", again.cause
    assert again.states_entered()[-1] == "Retraining suppressed"
    assert "cool-down" in again.output["Report"]["RetrainReason"]


def test_batch_variant_monitors_batch_transform_captures(deployed):
    # GIVEN a batch scoring run of shifted real applications with the live package (batch capture on)
    runtime, rows = deployed
    sagemaker = runtime.client("sagemaker")
    arn = next(p["ModelPackageArn"] for p in sagemaker.list_model_packages(ModelPackageGroupName="sagestep-credit-dev",
                                                                            ModelApprovalStatus="Approved")["ModelPackageSummaryList"])
    features = load_event("smoke_test_credit_data")["FeatureNames"]
    lines = [",".join("" if r[f] is None else str(r[f]) for f in features) for r in shifted(rows, 3.0).instances]
    bucket = runtime.bucket("ArtifactsBucket")
    runtime.client("s3").put_object(Bucket=bucket, Key="batch-monitor-in/applications.csv", Body=("\n".join(lines) + "\n").encode())
    scored = runtime.run("BatchInferenceStateMachine", {"ModelPackageArn": arn, "InputS3Uri": f"s3://{bucket}/batch-monitor-in/",
                                                         "OutputS3Uri": f"s3://{bucket}/batch-monitor-out/"}, name="batch-for-monitoring")
    assert scored.status == "SUCCEEDED", scored.cause
    # WHEN the monitoring machine runs on the batch captures
    execution_input = monitoring_input(BatchCaptureS3Uri=f"s3://{bucket}/batch-capture/", ModelPackageArn=arn, ScheduleName="batch")
    record = runtime.run("MonitoringStateMachine", execution_input, name="monitor-batch")
    # THEN data quality runs on them (no ground truth for batch) and flags the shift
    assert record.status == "SUCCEEDED", record.cause
    assert "No ground truth for batch" in record.states_entered() and "Alert" in record.states_entered()
    assert record.output["Context"]["CaptureFiles"] > 0
    assert any("Income" in reason or "Amount" in reason for reason in record.output["Report"]["Reasons"])
