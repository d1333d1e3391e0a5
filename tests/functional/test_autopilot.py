"""The template's rules drive the lifecycle, and stay right under real event delivery: an event delivered several
times, approvals close together, metadata updates of a live package, an upload of many objects."""

from __future__ import annotations

import json
import time

import pytest

from sagestep.local import LocalRuntime
from sagestep.local.bus import read_deliveries, read_events
from tests.conftest import REPO_ROOT
from tests.functional.test_deployment_pipeline import ENDPOINT, register

DEPLOY_RULE = "sagestep-local-DeploymentStateMachineDeployOnApproval"
TRAIN_RULE = "sagestep-local-TrainingStateMachineRetrainOnNewData"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    # The settle window (120 s, 1.2 s at this time scale) must outlast the upload, as in AWS; a busy 2-core machine
    # can take longer than 1.2 s to put twenty objects and start their executions, so the window is 10 s here.
    with LocalRuntime(REPO_ROOT, workspace=tmp_path_factory.mktemp("autopilot-ws"), time_scale=0.01,
                      parameter_overrides={"NewDataSettleSeconds": "1000"}) as rt:
        yield rt


def started_by(runtime: LocalRuntime, rule: str) -> list[str]:
    return [d["execution"] for d in read_deliveries(runtime.workspace.root / "events.jsonl")
            if d["rule"] == rule and "execution" in d]


def wait_all(runtime: LocalRuntime, arns: list[str], timeout: float = 600) -> list[dict]:
    sfn = runtime.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while True:
        described = [sfn.describe_execution(executionArn=a) for a in arns]
        if all(d["status"] != "RUNNING" for d in described) or time.monotonic() > deadline:
            return described
        time.sleep(0.2)


def wait_for(condition, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    return condition()


def live_config(runtime: LocalRuntime) -> str:
    return runtime.client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]


def outcomes(described: list[dict]) -> list[str]:
    return sorted((json.loads(d.get("output") or "{}").get("Outcome") or d["status"]) for d in described)


def test_twenty_objects_uploaded_at_once_start_one_training(runtime):
    s3 = runtime.client("s3")
    bucket = runtime.bucket("DataBucket")
    # GIVEN a user uploading a dataset as 20 files at once (each an "Object Created" event)
    s3.upload_file(str(REPO_ROOT / "ml" / "config" / "credit_data.yaml"), bucket, "configs/credit_data.yaml")
    for part in range(20):
        s3.put_object(Bucket=bucket, Key=f"datasets/credit_data/part-{part:02d}.csv", Body=b"x\n")
    # THEN the rule started one execution per object, and after the upload settled exactly one goes on to train
    arns = wait_for(lambda: (a := started_by(runtime, TRAIN_RULE)) and len(a) >= 20 and a)
    assert len(arns) == 20
    sfn = runtime.client("stepfunctions")
    survivors = wait_for(lambda: [a for a in arns if any(
        "stateEnteredEventDetails" in e and e["stateEnteredEventDetails"]["name"] == "Name the run"
        for e in sfn.get_execution_history(executionArn=a, maxResults=1000)["events"])], timeout=300)
    for arn in survivors:
        sfn.stop_execution(executionArn=arn, error="test", cause="stop after it went on to train")
    described = wait_all(runtime, arns)
    assert len(survivors) == 1
    assert outcomes(described).count("SupersededByNewerData") == 19, [
        (d["name"], d.get("error"), d.get("cause")) for d in described if d["status"] == "FAILED"]


def test_the_same_approval_delivered_three_times_deploys_once(runtime, trained_models):
    # GIVEN an approved package, whose approval event the rule already delivered once
    arn = register(runtime, "v1", trained_models["v1"])
    first = wait_for(lambda: started_by(runtime, DEPLOY_RULE))
    # WHEN the same event arrives twice more (AWS may deliver a state change several times)
    event = next(r["event"] for r in read_events(runtime.workspace.root / "events.jsonl", 10_000)
                 if r["event"].get("detail", {}).get("ModelPackageArn") == arn)
    runtime.cloud.bus.put(event, origin="redelivery")
    runtime.cloud.bus.put(event, origin="redelivery")
    arns = wait_for(lambda: (a := started_by(runtime, DEPLOY_RULE)) and len(a) >= 3 and a)
    described = wait_all(runtime, arns)
    # THEN one deployment put it live, the others changed nothing, and the package serves
    assert len(first) == 1 and len(arns) == 3
    assert all(d["status"] == "SUCCEEDED" for d in described), [d.get("cause") for d in described]
    assert outcomes(described).count("AlreadyLive") == 2
    package = runtime.client("sagemaker").describe_model_package(ModelPackageName=arn)
    assert package["CustomerMetadataProperties"]["DeployedEndpointConfig"] == live_config(runtime)


def test_recording_metadata_on_a_live_package_starts_nothing(runtime, trained_models):
    before = len(started_by(runtime, DEPLOY_RULE))
    live = runtime.client("sagemaker").list_model_packages(ModelPackageGroupName=ENDPOINT, ModelApprovalStatus="Approved",
                                                           SortBy="CreationTime", SortOrder="Descending")
    arn = live["ModelPackageSummaryList"][0]["ModelPackageArn"]
    runtime.client("sagemaker").update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={"ReviewedBy": "audit"})
    time.sleep(1.5)
    assert len(started_by(runtime, DEPLOY_RULE)) == before


def test_two_approvals_a_second_apart_leave_the_later_package_live_and_restore_nothing(runtime, trained_models):
    before = set(started_by(runtime, DEPLOY_RULE))
    older = register(runtime, "older", trained_models["v2"])
    time.sleep(1)
    newer = register(runtime, "newer", trained_models["v1"])
    arns = wait_for(lambda: (a := [x for x in started_by(runtime, DEPLOY_RULE) if x not in before]) and len(a) >= 2 and a)
    described = wait_all(runtime, arns)
    assert all(d["status"] == "SUCCEEDED" for d in described), [d.get("cause") for d in described]
    sagemaker = runtime.client("sagemaker")
    newer_config = sagemaker.describe_model_package(ModelPackageName=newer)["CustomerMetadataProperties"]["DeployedEndpointConfig"]
    assert live_config(runtime) == newer_config
    # the older one either saw it was superseded before it started, or went live first and was then replaced
    assert outcomes(described) in (["SUCCEEDED", "SUCCEEDED"], ["SUCCEEDED", "Superseded"]), outcomes(described)
    histories = [runtime.events(d["executionArn"]) for d in described]
    assert not any("stateEnteredEventDetails" in e and e["stateEnteredEventDetails"]["name"] == "Restore previous config"
                   for h in histories for e in h)
