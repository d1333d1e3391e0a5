"""The audit trail in the local cloud (issue 14): a lean life cycle on the real credit data — train, approve (the
template's DeployOnApproval rule deploys), approve again, retrain and reject the new package, an operator's attempt to
deploy the rejected package (refused: PackageNotApproved) — leaves one valid record per decision in the Object Lock audit bucket,
written by the deciding function or by the audit recorder on the events AWS emits; a locked record can be neither
deleted nor overwritten. The decisions of monitoring (violations) and of an A/B test are checked after the autopilot's
life cycle, in tests/functional/test_demo.py."""

from __future__ import annotations

import copy
import json
import time

import pytest
import yaml
from botocore.exceptions import ClientError

from sagestep.audit import records as audit
from sagestep.local import LocalRuntime
from sagestep.registry import approvals
from tests.conftest import REPO_ROOT, load_event

# EventBridge delivers asynchronously; the recorder is a small Lambda call, this only bounds a hung delivery.
DELIVERY_PATIENCE_S = 300


@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory, credit_data):
    overrides = {"RetrainOnNewDataState": "DISABLED"}  # DeployOnApproval stays on: approval deploys, as in AWS
    with LocalRuntime(REPO_ROOT, workspace=tmp_path_factory.mktemp("ws"), time_scale=0.001,
                      parameter_overrides=overrides) as runtime:
        bucket = runtime.bucket("DataBucket")
        s3 = runtime.client("s3")
        s3.put_object(Bucket=bucket, Key="datasets/credit_data/credit_data.csv", Body=credit_data.to_csv(index=False).encode())
        config = yaml.safe_load((REPO_ROOT / "ml" / "config" / "credit_data.yaml").read_text())
        s3.put_object(Bucket=bucket, Key="configs/credit_data.yaml", Body=yaml.safe_dump(config).encode())
        execution_input = copy.deepcopy(load_event("training_state_machine_credit_data"))
        execution_input["DataS3Uri"] = f"s3://{bucket}/datasets/credit_data/"
        execution_input["DatasetConfigS3Uri"] = f"s3://{bucket}/configs/credit_data.yaml"
        training = runtime.run("TrainingStateMachine", execution_input, name="audit-train")
        assert training.status == "SUCCEEDED", training.cause
        package = training.output["Registered"]["ModelPackageArn"]
        sagemaker = runtime.client("sagemaker")
        approvals.decide(sagemaker, package, "approve", by="Ana Risk", reason="AUC and fairness reviewed")
        deployment = _wait_for_deployment(runtime)
        assert deployment.status == "SUCCEEDED", deployment.cause
        approvals.decide(sagemaker, package, "approve", by="Ben Audit", reason="re-reviewed after the deployment")
        # a retraining's package is rejected; an operator then tries to deploy it anyway: Step Functions refuses it
        retraining = runtime.run("TrainingStateMachine", execution_input, name="audit-retrain")
        assert retraining.status == "SUCCEEDED", retraining.cause
        rejected = retraining.output["Registered"]["ModelPackageArn"]
        approvals.decide(sagemaker, rejected, "reject", by="Cy Review", reason="no better than the live model")
        sfn = runtime.client("stepfunctions")
        refused = runtime.wait(sfn.start_execution(stateMachineArn=runtime.state_machine_arn("DeploymentStateMachine"),
                                                   name="audit-deploy-rejected",
                                                   input=json.dumps({"ModelPackageArn": rejected}))["executionArn"])
        assert (refused.status, refused.error) == ("FAILED", "PackageNotApproved"), refused.cause
        yield runtime, package, training, deployment, (retraining, rejected, refused)


def _wait_for_deployment(runtime: LocalRuntime):
    sfn = runtime.client("stepfunctions")
    arn = runtime.state_machine_arn("DeploymentStateMachine")
    started = time.monotonic()
    while not (executions := sfn.list_executions(stateMachineArn=arn)["executions"]):
        assert time.monotonic() - started < DELIVERY_PATIENCE_S, "the approval did not start a deployment"
        time.sleep(0.2)
    assert len(executions) == 1, executions
    return runtime.wait(executions[0]["executionArn"])


def _records(runtime: LocalRuntime, expected: dict[str, int]) -> dict[str, list[tuple[str, dict]]]:
    """Every record in the audit bucket by kind, once at least `expected` have arrived."""
    s3, bucket = runtime.client("s3"), runtime.bucket("AuditBucket")
    started = time.monotonic()
    while True:
        found: dict[str, list[tuple[str, dict]]] = {}
        for key, record in audit.read(s3, bucket):
            found.setdefault(record["kind"], []).append((key, record))
        if all(len(found.get(k, [])) >= n for k, n in expected.items()) or time.monotonic() - started > DELIVERY_PATIENCE_S:
            return found
        time.sleep(0.2)


EXPECTED = {"training_started": 2, "gate_decision": 2, "approval": 2, "rejection": 1, "deployment_started": 2,
            "deployment_succeeded": 1, "deployment_failed": 1}


def test_life_cycle_leaves_one_valid_record_per_decision_and_a_second_approval_adds_one(lifecycle):
    runtime, package, training, deployment, (retraining, rejected, refused) = lifecycle
    # WHEN the audit bucket is read after train -> approve (-> deploy) -> approve again -> retrain -> reject the new
    # package -> deploy it (refused)
    found = _records(runtime, EXPECTED)
    # THEN it holds exactly one record per decision, each valid against the versioned schema
    assert {k: len(v) for k, v in found.items()} == EXPECTED
    for _, record in (item for items in found.values() for item in items):
        audit.validate(record)
    gates = {r["subject"]["execution_arn"]: r for _, r in found["gate_decision"]}
    assert set(gates) == {training.execution_arn, retraining.execution_arn}
    assert gates[training.execution_arn]["decision"] == "passed" and "TestAuc" in gates[training.execution_arn]["evidence"]["metrics"]
    assert {r["subject"]["execution_arn"] for _, r in found["training_started"]} == {training.execution_arn,
                                                                                     retraining.execution_arn}
    assert {r["subject"]["execution_arn"] for _, r in found["deployment_succeeded"]} == {deployment.execution_arn}
    assert {r["subject"]["execution_arn"] for _, r in found["deployment_started"]} == {deployment.execution_arn,
                                                                                       refused.execution_arn}
    # AND the refused deployment of the rejected package is recorded, and the rejection with who and why
    failed = found["deployment_failed"][0][1]
    assert (failed["subject"]["execution_arn"], failed["subject"]["model_package_arn"], failed["decision"]) == (
        refused.execution_arn, rejected, "FAILED")
    rejection = found["rejection"][0][1]
    assert (rejection["actor"]["name"], rejection["reasons"][0], rejection["subject"]["model_package_arn"]) == (
        "Cy Review", "no better than the live model", rejected)
    # AND the second approval added a record: both approvers and reasons are kept, the first is not overwritten
    approvals_found = sorted((r["actor"]["name"], r["reasons"][0]) for _, r in found["approval"])
    assert approvals_found == [("Ana Risk", "AUC and fairness reviewed"), ("Ben Audit", "re-reviewed after the deployment")]
    assert all(r["subject"]["model_package_arn"] == package for _, r in found["approval"])
    keys = [key for items in found.values() for key, _ in items]
    assert len(keys) == len(set(keys))


def test_a_locked_record_can_be_neither_deleted_nor_overwritten(lifecycle):
    runtime = lifecycle[0]
    s3, bucket = runtime.client("s3"), runtime.bucket("AuditBucket")
    key, record = _records(runtime, {"approval": 1})["approval"][0]
    head = s3.head_object(Bucket=bucket, Key=key)
    # GIVEN a record kept by the bucket's default retention, COMPLIANCE mode, for AuditRetentionDays
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert (head["ObjectLockRetainUntilDate"] - head["LastModified"]).days >= 2556
    # WHEN someone deletes that version
    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket=bucket, Key=key, VersionId=head["VersionId"])
    # THEN S3 refuses it
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    # AND the writer never overwrites: writing the same decision again is a no-op, the key is taken
    assert audit.write(s3, bucket, record) is None
    with pytest.raises(ClientError) as taken:
        s3.put_object(Bucket=bucket, Key=key, Body=b"{}", IfNoneMatch="*")
    assert taken.value.response["Error"]["Code"] == "PreconditionFailed"
    # AND the locked version still reads back as written
    assert json.loads(s3.get_object(Bucket=bucket, Key=key, VersionId=head["VersionId"])["Body"].read()) == record


def test_the_registered_package_has_a_model_card_valid_against_aws_schema_and_rendered_in_the_report(lifecycle):
    from sagestep.validate import model_card

    runtime, package, training, *_ = lifecycle
    sagemaker = runtime.client("sagemaker")
    # GIVEN the training run's model card, as the pipeline created it in the local SageMaker
    arn = training.output["ModelCard"]["ModelCardArn"]
    card = sagemaker.describe_model_card(ModelCardName=arn.rsplit("/", 1)[-1])
    # THEN it is linked to the registered package and its content is valid against AWS's schema
    content = model_card.check(card["Content"])
    assert content["model_package_details"]["model_package_arn"] == package
    assert card["ModelCardStatus"] == "PendingReview"
    assert content["training_details"]["training_job_details"]["training_datasets"] == [training.input["DataS3Uri"]]
    # AND the run's report shows it
    report = runtime.local_path(sagemaker.describe_model_package(ModelPackageName=package)["CustomerMetadataProperties"]["ReportS3Uri"])
    assert "Model card" in report.read_text() and content["intended_uses"]["risk_rating"] in report.read_text()


def test_explain_decision_prints_the_captured_decision_its_model_lineage_and_approvals(lifecycle):
    import subprocess
    import sys

    runtime, package, training, deployment, _ = lifecycle
    # GIVEN three real applicants scored by the deployed endpoint under one inference id
    rows = load_event("smoke_test_credit_data")["Rows"][:3]
    endpoint = deployment.input.get("EndpointName") or "sagestep-dev-credit-data"
    response = runtime.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=endpoint, ContentType="text/csv", Accept="application/json", Body="\n".join(rows).encode(),
        InferenceId="loan-app-000123")
    predictions = json.loads(response["Body"].read())["predictions"]
    from sagestep.cli import UserError
    from sagestep.cli.explain import find_capture

    started = time.monotonic()
    while True:  # the endpoint writes its capture file within a second or so
        try:
            find_capture(runtime.client("s3"), runtime.bucket("ArtifactsBucket"), "loan-app-000123")
            break
        except UserError:
            assert time.monotonic() - started < DELIVERY_PATIENCE_S, "the request was never captured"
            time.sleep(0.2)
    # WHEN an analyst asks for the decision by its inference id (the command attaches to the running local cloud)
    result = subprocess.run([sys.executable, "-m", "sagestep", "explain-decision", "loan-app-000123", "--json",
                             "--workspace", str(runtime.workspace.root)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    # THEN it names the variant and package that served it, the inputs, score, decision and reason codes
    assert (record["endpoint"], record["variant"], record["model_package_arn"]) == (endpoint, "Primary", package)
    assert [d["score"] for d in record["decisions"]] == [p["score"] for p in predictions]
    assert [d["decision"] for d in record["decisions"]] == [p["decision"] for p in predictions]
    assert [d["reason_codes"] for d in record["decisions"]] == [p["reason_codes"] for p in predictions]
    assert record["decisions"][0]["inputs"]["Income"] == rows[0].split(",")[list(record["decisions"][0]["inputs"]).index("Income")]
    # AND the model's lineage and both approvals, each pointing at its audit record (not the rejection of another
    # package of the line)
    assert record["lineage"]["ExecutionArn"] == training.execution_arn and record["lineage"]["DataS3Uri"]
    assert [(a["by"], a["decision"]) for a in record["approvals"]] == [("Ana Risk", "Approved"), ("Ben Audit", "Approved")]
    assert all(a["audit_record"].startswith(f"s3://{runtime.bucket('AuditBucket')}/audit/v1/approval/") for a in record["approvals"])
    # AND the plain-text form says the same for a reader
    text = subprocess.run([sys.executable, "-m", "sagestep", "explain-decision", "loan-app-000123",
                           "--workspace", str(runtime.workspace.root)], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=600).stdout
    assert "model package   " + package in text and "Approved by Ana Risk" in text and "reason codes" in text
