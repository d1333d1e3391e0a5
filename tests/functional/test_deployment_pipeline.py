"""Path tests of statemachines/deployment.asl.json in the local runtime, with models trained on real credit data.

The tests share one runtime and run in file order: first deployment, blue/green update, smoke test failure
(rolled back), a model that cannot start (update rolled back by the endpoint); the timeout path uses its own runtime.
"""

from __future__ import annotations

import json

import pytest

from sagestep.local import LocalRuntime
from tests.conftest import BY_HAND, REPO_ROOT, load_event
from tests.functional.archives import tar_gz, toy_model

ENDPOINT = "sagestep-dev-credit-data"  # the credit_data model line: its endpoint has its group's name


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    with LocalRuntime(REPO_ROOT, workspace=tmp_path_factory.mktemp("ws"), time_scale=0.01, parameter_overrides=BY_HAND) as rt:
        yield rt


def register(runtime: LocalRuntime, name: str, artifact: bytes, submit_directory: str | None = None,
             group: str = ENDPOINT) -> str:
    """Put a model artifact in S3 and register it as an Approved package of a model line's group, as training +
    approval would."""
    bucket = runtime.bucket("ArtifactsBucket")
    runtime.client("s3").put_object(Bucket=bucket, Key=f"test-models/{name}/model.tar.gz", Body=artifact)
    runtime.client("s3").put_object(Bucket=bucket, Key=f"test-models/{name}/sample_payload.tar.gz", Body=sample_payload())
    code = runtime.state_machines["TrainingStateMachine"].substitutions["CodeS3Uri"] + "sourcedir.tar.gz"
    sagemaker = runtime.client("sagemaker")
    groups = {g["ModelPackageGroupName"] for g in sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]}
    if group not in groups:
        sagemaker.create_model_package_group(ModelPackageGroupName=group)
    arn = sagemaker.create_model_package(
        ModelPackageGroupName=group,
        ModelApprovalStatus="Approved",
        InferenceSpecification={
            "Containers": [
                {
                    "Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
                    "ModelDataUrl": f"s3://{bucket}/test-models/{name}/model.tar.gz",
                    "Environment": {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": submit_directory or code},
                }
            ],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        SamplePayloadUrl=f"s3://{bucket}/test-models/{name}/sample_payload.tar.gz",
        CustomerMetadataProperties={"DatasetName": "credit_data",  # lineage, as the training pipeline records it
                                    "DatasetConfigS3Uri": f"s3://{runtime.bucket('DataBucket')}/configs/credit_data.yaml"},
    )["ModelPackageArn"]
    return arn


def sample_payload() -> bytes:
    """The real held-out rows of events/smoke_test_credit_data.json, packed as ml/evaluate.py packs them."""
    event = load_event("smoke_test_credit_data")
    text = ",".join(event["FeatureNames"]) + "\n" + "\n".join(event["Rows"]) + "\n"
    return tar_gz({"sample.csv": text.encode()})


def endpoint(runtime: LocalRuntime) -> dict:
    return runtime.client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)


def test_first_deployment_creates_the_endpoint_smoke_tests_and_records_it(runtime, trained_models):
    arn = register(runtime, "v1", trained_models["v1"])
    record = runtime.run("DeploymentStateMachine", {"ModelPackageArn": arn}, name="deploy-v1")
    assert record.status == "SUCCEEDED", record.cause
    assert "Create endpoint" in record.states_entered() and "Update endpoint" not in record.states_entered()
    assert endpoint(runtime)["EndpointStatus"] == "InService"
    metadata = runtime.client("sagemaker").describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"]
    assert metadata["DeployedEndpoint"] == ENDPOINT and metadata["DeployedEndpointConfig"] == endpoint(runtime)["EndpointConfigName"]
    # AND the line's rollback alarms exist and notify the topic
    alarms = runtime.client("cloudwatch").describe_alarms(AlarmNamePrefix=ENDPOINT)["MetricAlarms"]
    assert sorted(a["AlarmName"] for a in alarms) == [f"{ENDPOINT}-5xx", f"{ENDPOINT}-latency", f"{ENDPOINT}-model-errors"]
    assert all(a["AlarmActions"] == [runtime.state_machines["DeploymentStateMachine"].substitutions["NotificationTopicArn"]]
               and {"Name": "EndpointName", "Value": ENDPOINT} in a["Dimensions"] for a in alarms)
    response = runtime.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=ENDPOINT, ContentType="text/csv", Accept="application/json", Body=b"9,60,30,73,129,0,0,800,846,rent,married,no,freelance"
    )
    prediction = json.loads(response["Body"].read())["predictions"][0]
    assert 0.0 <= prediction["score"] <= 1.0 and prediction["decision"] in ("approve", "decline")


def test_second_approval_updates_the_endpoint_blue_green(runtime, trained_models):
    before = endpoint(runtime)["EndpointConfigName"]
    arn = register(runtime, "v2", trained_models["v2"])
    record = runtime.run("DeploymentStateMachine", {"ModelPackageArn": arn}, name="deploy-v2")
    assert record.status == "SUCCEEDED", record.cause
    assert "Update endpoint" in record.states_entered()
    after = endpoint(runtime)
    assert after["EndpointStatus"] == "InService" and after["EndpointConfigName"] != before


def test_failed_smoke_test_restores_the_previous_config(runtime):
    # GIVEN a package whose serving code answers in the wrong shape (plain numbers, not the JSON schema)
    good = endpoint(runtime)["EndpointConfigName"]
    bucket = runtime.bucket("ArtifactsBucket")
    runtime.client("s3").put_object(
        Bucket=bucket, Key="test-code/wrong-shape/inference.py", Body=(REPO_ROOT / "tests" / "functional" / "jobs" / "inference.py").read_bytes()
    )
    arn = register(runtime, "wrong-shape", toy_model(1000), submit_directory=f"s3://{bucket}/test-code/wrong-shape/")
    record = runtime.run("DeploymentStateMachine", {"ModelPackageArn": arn}, name="deploy-wrong-shape")
    # THEN the deployment fails, the previous config serves again, and the failure is notified
    assert record.status == "FAILED" and record.error == "SmokeTestFailed"
    assert "Restore previous config" in record.states_entered()
    runtime.endpoints.wait_idle()
    assert endpoint(runtime)["EndpointConfigName"] == good
    assert any("deployment failed" in (n["Subject"] or "") for n in runtime.notifications())


def test_model_that_cannot_start_is_rolled_back_by_the_endpoint(runtime):
    good = endpoint(runtime)["EndpointConfigName"]
    arn = register(runtime, "broken", b"this is not a tarball")
    record = runtime.run("DeploymentStateMachine", {"ModelPackageArn": arn}, name="deploy-broken")
    assert record.status == "FAILED" and record.error == "UpdateRolledBack"
    assert endpoint(runtime)["EndpointConfigName"] == good


def test_package_is_never_deployed_to_another_model_lines_endpoint(runtime, trained_models):
    # GIVEN an approved package of the credit-data line, and the german-credit line's endpoint name
    arn = register(runtime, "v1-elsewhere", trained_models["v1"])
    configs = {e["EndpointName"]: e for e in runtime.client("sagemaker").list_endpoints()["Endpoints"]}
    # WHEN it is deployed to that endpoint
    record = runtime.run("DeploymentStateMachine", {"ModelPackageArn": arn, "EndpointName": "sagestep-dev-german-credit"},
                         name="deploy-wrong-line")
    # THEN it is refused with the reason, before anything is created
    assert record.status == "FAILED" and record.error == "WrongModelLine"
    assert "belongs to model line credit-data" in record.cause and "sagestep-dev-german-credit" in record.cause
    assert "Create model" not in record.states_entered()
    assert {e["EndpointName"]: e for e in runtime.client("sagemaker").list_endpoints()["Endpoints"]} == configs


def test_package_outside_the_model_lines_is_refused(runtime, trained_models):
    arn = register(runtime, "foreign", trained_models["v1"], group="someone-elses-models")
    record = runtime.run("DeploymentStateMachine", {"ModelPackageArn": arn}, name="deploy-foreign")
    assert record.status == "FAILED" and record.error == "WrongModelLine"
    assert "not a model line of this stack" in record.cause


def test_unapproved_package_is_refused(runtime, trained_models):
    arn = register(runtime, "pending", trained_models["v1"])
    runtime.client("sagemaker").update_model_package(ModelPackageArn=arn, ModelApprovalStatus="PendingManualApproval")
    record = runtime.run("DeploymentStateMachine", {"ModelPackageArn": arn}, name="deploy-pending")
    assert record.status == "FAILED" and record.error == "PackageNotApproved"
