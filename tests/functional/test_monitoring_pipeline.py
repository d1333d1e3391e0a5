"""Two model lines side by side, and statemachines/monitoring.asl.json over both: credit_data and german_credit
trained, approved and deployed by the real pipelines (two endpoints), real held-out applications as traffic
(clean, then with an injected shift on one line), labels arriving as ground truth."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest

from sagestep.local import LocalRuntime
from sagestep.local.traffic import Traffic, load_rows
from sagestep.registry import approvals
from tests.conftest import BY_HAND, REPO_ROOT, load_event

LINES = {  # dataset config -> (model line, its endpoint)
    "credit_data": ("credit-data", "sagestep-dev-credit-data"),
    "german_credit": ("german-credit", "sagestep-dev-german-credit"),
}
CREDIT, GERMAN = LINES["credit_data"][1], LINES["german_credit"][1]


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """Both lines trained, approved and live; per endpoint: (package ARN, held-out rows)."""
    with LocalRuntime(REPO_ROOT, workspace=tmp_path_factory.mktemp("ws"), time_scale=0.01, parameter_overrides=BY_HAND) as runtime:
        bucket = runtime.bucket("DataBucket")
        live = {}
        for dataset, (_line, endpoint) in LINES.items():
            runtime.put_file(REPO_ROOT / "data" / dataset / f"{dataset}.csv", f"s3://{bucket}/datasets/{dataset}/{dataset}.csv")
            runtime.put_file(REPO_ROOT / "ml" / "config" / f"{dataset}.yaml", f"s3://{bucket}/configs/{dataset}.yaml")
            execution_input = {**load_event("training_state_machine_credit_data"), "DataS3Uri": f"s3://{bucket}/datasets/{dataset}/",
                               "DatasetConfigS3Uri": f"s3://{bucket}/configs/{dataset}.yaml"}
            training = runtime.run("TrainingStateMachine", execution_input, name=f"train-{dataset}".replace("_", "-"))
            assert training.status == "SUCCEEDED", training.cause
            arn = training.output["Registered"]["ModelPackageArn"]
            approvals.decide(runtime.client("sagemaker"), arn, "approve", by="test", reason="monitoring tests")
            deployment = runtime.run("DeploymentStateMachine", {"ModelPackageArn": arn}, name=f"deploy-{dataset}".replace("_", "-"))
            assert deployment.status == "SUCCEEDED", deployment.cause
            test_csv = runtime.local_path(training.output["Run"]["OutputS3Uri"]) / "preprocess" / "test" / "test.csv"
            live[endpoint] = (arn, load_rows(test_csv, dataset_config=REPO_ROOT / "ml" / "config" / f"{dataset}.yaml"))
        yield runtime, live


def monitoring_input(**overrides) -> dict:
    execution_input = copy.deepcopy(load_event("monitoring_state_machine_hourly"))
    # the whole current hour and the day before: traffic in these tests is seconds old
    execution_input.update(WindowHours=2, EndOffsetHours=1, MergeStartOffset="-P1D", MergeEndOffset="-PT0S", **overrides)
    return execution_input


def shifted(rows, factor: float):
    """The same real applications with incomes and amounts scaled: a known, injected drift."""
    instances = [{**r, "Income": None if r["Income"] is None else r["Income"] * factor, "Amount": r["Amount"] * factor} for r in rows.instances]
    return dataclasses.replace(rows, instances=instances)


def results(record) -> dict[str, dict]:
    return {r["Line"]: r for r in record.output["Results"]}


def test_two_model_lines_serve_side_by_side_and_never_take_each_others_packages(deployed):
    # GIVEN credit_data and german_credit trained, approved and deployed by the same stack
    runtime, live = deployed
    sagemaker = runtime.client("sagemaker")
    # THEN each line has its own group and its own endpoint, serving its own model
    for endpoint, (arn, rows) in live.items():
        package = sagemaker.describe_model_package(ModelPackageName=arn)
        assert package["ModelPackageGroupName"] == endpoint
        assert sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService"
        report = Traffic(runtime, endpoint, rows, rate=500, labels_after=0.0, run_id=f"smoke-{endpoint}").send(count=20)
        assert report.errors == 0, report.last_error
    assert {row["Line"] for row in approvals.list_lines(sagemaker, "sagestep-dev-")} == {"credit-data", "german-credit"}
    # AND a package of one line is refused on the other line's endpoint, which keeps serving
    german_config = sagemaker.describe_endpoint(EndpointName=GERMAN)["EndpointConfigName"]
    record = runtime.run("DeploymentStateMachine", {"ModelPackageArn": live[CREDIT][0], "EndpointName": GERMAN},
                         name="credit-to-german")
    assert record.status == "FAILED" and record.error == "WrongModelLine", record.cause
    assert sagemaker.describe_endpoint(EndpointName=GERMAN)["EndpointConfigName"] == german_config


def test_one_schedule_monitors_every_line_and_clean_traffic_raises_no_violation(deployed):
    runtime, live = deployed
    for endpoint, (_arn, rows) in live.items():
        report = Traffic(runtime, endpoint, rows, rate=500, labels_after=0.0, run_id="clean").send(count=len(rows.instances))
        assert report.errors == 0, report.last_error
    record = runtime.run("MonitoringStateMachine", monitoring_input(), name="monitor-clean")
    assert record.status == "SUCCEEDED", record.cause
    by_line = results(record)
    assert set(by_line) == {"credit-data", "german-credit"}
    for line in by_line.values():
        assert line["Status"] == "OK", line
        assert line["CaptureFiles"] > 0 and line["Merged"] > 0
        assert f"/monitoring/sagestep-dev-{line['Line']}/hourly/" in line["ReportS3Uri"]


def test_drift_on_one_line_alerts_and_retrains_that_line_then_cool_down_suppresses_it(deployed):
    runtime, live = deployed
    _arn, rows = live[CREDIT]
    report = Traffic(runtime, CREDIT, shifted(rows, 3.0), rate=500, labels_after=0.0, run_id="drift").send(count=2 * len(rows.instances))
    assert report.errors == 0, report.last_error
    record = runtime.run("MonitoringStateMachine", monitoring_input(ModelLine="credit-data"), name="monitor-drift")
    assert record.status == "SUCCEEDED", record.cause
    credit = results(record)["credit-data"]
    assert credit["Status"] == "VIOLATIONS" and credit["Retraining"].startswith("arn:")
    assert "drift-credit-data-" in credit["Retraining"]
    assert any("Income" in reason or "Amount" in reason for reason in credit["Reasons"])
    alert = [n for n in runtime.notifications() if "violations" in (n["Subject"] or "")]
    assert alert and "model line credit-data" in alert[-1]["Message"] and "monitoring/" in alert[-1]["Message"]
    # AND the violations are in the audit trail (issue 14), one record for the run, valid against its schema
    from sagestep.audit import records as audit

    s3, bucket = runtime.client("s3"), runtime.bucket("AuditBucket")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="audit/v1/monitoring_violations/").get("Contents", [])]
    assert len(keys) == 1
    violations = json.loads(s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read())
    audit.validate(violations)
    assert violations["subject"]["endpoint_name"] == "sagestep-dev-credit-data" and any("Income" in r or "Amount" in r for r in violations["reasons"])
    # AND a second drift alert inside the cool-down does not start another retraining of the line
    again = runtime.run("MonitoringStateMachine", monitoring_input(ModelLine="credit-data"), name="monitor-drift-again")
    assert again.status == "SUCCEEDED", again.cause
    assert "cool-down" in results(again)["credit-data"]["Retraining"]


def test_batch_variant_monitors_the_batch_captures_of_the_package_line(deployed):
    # GIVEN a batch scoring run of shifted real applications with the live credit package (batch capture on)
    runtime, live = deployed
    arn, rows = live[CREDIT]
    features = load_event("smoke_test_credit_data")["FeatureNames"]
    lines = [",".join("" if r[f] is None else str(r[f]) for f in features) for r in shifted(rows, 3.0).instances]
    bucket = runtime.bucket("ArtifactsBucket")
    runtime.client("s3").put_object(Bucket=bucket, Key="batch-monitor-in/applications.csv", Body=("\n".join(lines) + "\n").encode())
    scored = runtime.run("BatchInferenceStateMachine", {"ModelPackageArn": arn, "InputS3Uri": f"s3://{bucket}/batch-monitor-in/",
                                                         "OutputS3Uri": f"s3://{bucket}/batch-monitor-out/"}, name="batch-for-monitoring")
    assert scored.status == "SUCCEEDED", scored.cause
    # WHEN the monitoring machine runs on the batch captures (their root; the package names its line)
    execution_input = monitoring_input(BatchCaptureS3Uri=f"s3://{bucket}/batch-capture/", ModelPackageArn=arn, ScheduleName="batch")
    record = runtime.run("MonitoringStateMachine", execution_input, name="monitor-batch")
    # THEN data quality runs on that line's batch captures only (no ground truth for batch) and flags the shift
    assert record.status == "SUCCEEDED", record.cause
    assert "No ground truth for batch" in record.states_entered()
    (credit,) = record.output["Results"]
    assert credit["Line"] == "credit-data" and credit["CaptureFiles"] > 0
    assert any("Income" in reason or "Amount" in reason for reason in credit["Reasons"])
