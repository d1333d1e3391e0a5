"""Faults injected into the shared local cloud while the template's state machines run: service calls throttled or
refused, jobs that fail or are stopped, a Lambda that raises, times out or is throttled, endpoints that cannot start.
Each execution ends in its designed state: recovered by its Retry, or failed in a named state whose cause says what
went wrong (a job's own message, a Lambda's error type and message) and whose notice (SNS) says the same; the
workspace answers its everyday commands after."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from sagestep.local.engine import TaskStub
from tests.conftest import REPO_ROOT, load_event
from tests.reliability.catalogue import DESIGNED, FAULT, clear_message, judge
from tests.reliability.conftest import World, wait_for

TRAINING = load_event("training_state_machine_credit_data")
AB = load_event("ab_test_state_machine_split")
BATCH = load_event("batch_inference_state_machine_credit_data")
HOURLY = load_event("monitoring_state_machine_hourly")


@dataclass(frozen=True)
class Fault:
    """`faults`: (service, action, error code, times) injected before the start; `stubs`: state name -> the TaskStub
    it answers with (a callable gets the call number); `input`: the execution input, given the world."""

    id: str
    machine: str
    input: Callable[[World], Any]
    status: str
    error: str | None
    cause: tuple[str, ...]
    faults: tuple[tuple[str, str, str, int], ...] = ()
    stubs: dict[str, Any] = field(default_factory=dict)
    retried: str | None = None  # a state that must have failed and been retried
    notice: tuple[str, ...] = ()  # fragments the SNS notice of the failure must carry


def training(world: World, **changes: Any) -> dict[str, Any]:
    return {**TRAINING, "DataS3Uri": f"s3://{world.data_bucket}/datasets/reliability-empty/",
            "DatasetConfigS3Uri": f"s3://{world.data_bucket}/configs/credit_data.yaml", **changes}


CREDIT = (REPO_ROOT / "data" / "credit_data" / "credit_data.csv").read_text().splitlines()
BAD_DATA = {  # datasets/<name>/credit.csv in the data bucket, as a user would upload them
    "reliability-semicolon": "\n".join(line.replace(",", ";") for line in CREDIT[:300]) + "\n",
}


@pytest.fixture(scope="module", autouse=True)
def uploads(world) -> None:
    s3 = world.runtime.client("s3")
    s3.put_object(Bucket=world.data_bucket, Key="configs/credit_data.yaml",
                  Body=(REPO_ROOT / "ml" / "config" / "credit_data.yaml").read_bytes())
    for name, text in BAD_DATA.items():
        s3.put_object(Bucket=world.data_bucket, Key=f"datasets/{name}/credit.csv", Body=text.encode())


TRAINED = TaskStub(output={"TrainingJobName": "stubbed-train", "ModelArtifacts": {"S3ModelArtifacts": "s3://x/model.tar.gz"},
                           "HyperParameters": {"algorithm": "lightgbm"}, "FinalMetricDataList": []})
CHECKED = TaskStub(output={"ProcessingJobName": "stubbed-check"})
UP_TO_GATE = {"Validate and preprocess": TaskStub(output={"ProcessingJobName": "stubbed-prep"}), "Train model": TRAINED,
              "Evaluate model": CHECKED, "Baseline data": CHECKED}


def first_call(stub: TaskStub) -> Callable[[int], TaskStub | None]:
    """The stub for the first attempt only (the engine asks twice per attempt: is it stubbed, then for the answer)."""
    return lambda call: stub if call < 2 else None


FAULTS = [
    # -- training: service calls, jobs, the quality-gate Lambda ---------------------------------------------------------
    Fault("training-create-processing-throttled-once", "TrainingStateMachine", training, "FAILED", "States.TaskFailed",
          ("prep", "Failed", "no objects under", "reliability-empty"),
          faults=(("sagemaker", "createProcessingJob", "ThrottlingException", 1),), retried="Validate and preprocess",
          notice=("training pipeline failed", "no objects under")),
    Fault("training-resource-limit-exhausted", "TrainingStateMachine", training, "FAILED",
          "SageMaker.ResourceLimitExceededException", ("ResourceLimitExceeded",),
          faults=(("sagemaker", "createProcessingJob", "ResourceLimitExceeded", 6),), retried="Validate and preprocess",
          notice=("ResourceLimitExceeded",)),
    Fault("training-sagemaker-unavailable", "TrainingStateMachine", training, "FAILED", "SageMaker.AmazonSageMakerException",
          ("ServiceUnavailable",), faults=(("sagemaker", "createProcessingJob", "ServiceUnavailable", 4),),
          retried="Validate and preprocess", notice=("ServiceUnavailable",)),
    Fault("training-preprocess-job-fails", "TrainingStateMachine", training, "FAILED", "States.TaskFailed",
          ("prep-0 Failed", "s3://", "reliability-empty", "input channel is empty"), notice=("reliability-empty",)),
    Fault("training-data-semicolon-delimited", "TrainingStateMachine",
          lambda w: training(w, DataS3Uri=f"s3://{w.data_bucket}/datasets/reliability-semicolon/"), "FAILED",
          "States.TaskFailed", ("prep-0 Failed", "data check", "reliability-semicolon", "save the file comma-separated",
                                "every check: report/validation_report.json"),
          notice=("data check",)),
    Fault("training-data-bucket-missing", "TrainingStateMachine",
          lambda w: training(w, DataS3Uri="s3://no-such-bucket-reliability/datasets/credit_data/"), "FAILED",
          "States.TaskFailed", ("prep-0 Failed", "bucket no-such-bucket-reliability does not exist")),
    Fault("training-gate-lambda-raises", "TrainingStateMachine", training, "FAILED", "S3ObjectError",
          ("S3ObjectError: s3://", "validation_report.json", "object not found"), stubs=UP_TO_GATE,
          notice=("training pipeline failed", "S3ObjectError", "validation_report.json")),
    Fault("training-gate-lambda-times-out", "TrainingStateMachine", training, "FAILED", "States.Timeout",
          ("Task timed out after 60.00 seconds",),
          stubs={**UP_TO_GATE, "Quality gate": TaskStub(error="States.Timeout", cause="Task timed out after 60.00 seconds")},
          notice=("States.Timeout", "timed out")),
    Fault("training-gate-lambda-throttled-once", "TrainingStateMachine", training, "FAILED", "S3ObjectError",
          ("validation_report.json", "object not found"),
          stubs={**UP_TO_GATE, "Quality gate": first_call(TaskStub(error="Lambda.TooManyRequestsException",
                                                                   cause="Rate Exceeded."))},
          retried="Quality gate"),
    Fault("training-write-report-job-fails", "TrainingStateMachine", training, "FAILED", "States.TaskFailed",
          ("report", "Failed", "the report failed"),
          stubs={**UP_TO_GATE, "Quality gate": TaskStub(output={"Payload": {
              "Passed": False, "Reasons": ["AUC 0.5 < 0.8"], "ChampionModelPackageArn": None, "CustomerMetadataProperties": {},
              "ModelLine": "credit-data", "ModelPackageGroupName": "sagestep-dev-credit-data", "ModelLineExists": True,
              "ReportS3Uri": "s3://x/report/", "Headline": "Test AUC 0.5000", "ModelCard": {}}}),
              "Write report": TaskStub(error="States.TaskFailed", cause=json.dumps(
                  {"ProcessingJobName": "run-report-0", "ProcessingJobStatus": "Failed", "ExitMessage": "the report failed"}))}),
    # -- deployment: the seeded live package (already live: nothing changes) ------------------------------------------
    Fault("deployment-describe-throttled-once", "DeploymentStateMachine", lambda w: {"ModelPackageArn": w.serving_arn},
          "SUCCEEDED", None, (), faults=(("sagemaker", "describeModelPackage", "ThrottlingException", 1),),
          retried="Describe package"),
    Fault("deployment-describe-fails", "DeploymentStateMachine", lambda w: {"ModelPackageArn": w.serving_arn},
          "FAILED", "SageMaker.SageMakerException", ("InternalFailure",),
          faults=(("sagemaker", "describeModelPackage", "InternalFailure", 4),), retried="Describe package",
          notice=("deployment failed", "nothing on the endpoint was changed")),
    Fault("deployment-list-packages-fails", "DeploymentStateMachine", lambda w: {"ModelPackageArn": w.serving_arn},
          "FAILED", "SageMaker.SageMakerException", ("ServiceUnavailable",),
          faults=(("sagemaker", "listModelPackages", "ServiceUnavailable", 4),),
          notice=("deployment failed", "nothing on the endpoint was changed")),
    # -- batch, monitoring, A/B test ------------------------------------------------------------------------------------
    Fault("batch-describe-package-fails", "BatchInferenceStateMachine",
          lambda w: {**BATCH, "ModelPackageArn": w.serving_arn}, "FAILED", "SageMaker.SageMakerException",
          ("InternalFailure",), faults=(("sagemaker", "describeModelPackage", "InternalFailure", 4),),
          retried="Describe package"),
    Fault("monitoring-list-lines-fails", "MonitoringStateMachine", lambda w: HOURLY, "FAILED", None,
          ("ServiceUnavailable",), faults=(("sagemaker", "listModelPackageGroups", "ServiceUnavailable", 4),)),
    Fault("ab-test-challenger-lookup-fails", "ABTestStateMachine",
          lambda w: {**AB, "ChallengerModelPackageArn": w.pending_arn}, "FAILED", "SageMaker.SageMakerException",
          ("InternalFailure",), faults=(("sagemaker", "describeModelPackage", "InternalFailure", 4),),
          retried="Find model line"),
]


def _stubber(stubs: dict[str, Any]) -> Callable[[str, Any], TaskStub | None]:
    calls: dict[str, int] = {}

    def answer(state: str, _input: Any) -> TaskStub | None:
        stub = stubs.get(state)
        if callable(stub):
            calls[state] = calls.get(state, 0) + 1
            return stub(calls[state] - 1)
        return stub

    return answer


def retried_states(history: list[dict[str, Any]]) -> set[str]:
    """States entered once but whose Task failed before a later attempt (Retry) in the same entry."""
    names, current, failed = set(), None, False
    for event in history:
        if "stateEnteredEventDetails" in event:
            current, failed = event["stateEnteredEventDetails"]["name"], False
        elif event["type"] == "TaskFailed":
            failed = True
        elif event["type"] == "TaskScheduled" and failed and current:
            names.add(current)
    return names


@pytest.mark.parametrize("fault", FAULTS, ids=[f.id for f in FAULTS])
def test_injected_fault_ends_in_the_designed_state(fault: Fault, world, request):
    # GIVEN the shared cloud with the fault injected
    runtime = world.runtime
    for service, action, code, times in fault.faults:
        runtime.inject_fault(service, action, code, times)
    runtime.stub_tasks(_stubber(fault.stubs) if fault.stubs else None)
    notices_before = len(list(runtime.notifications()))
    try:
        # WHEN the machine runs
        record = runtime.run(fault.machine, fault.input(world), timeout=240)
    finally:
        runtime.stub_tasks(None)
        from sagestep.local import engine

        engine.HOOKS.faults.clear()  # a fault the run did not consume must not leak into the next case
    # THEN it ends in its designed state, the cause says what went wrong, and the notice says the same
    problems = []
    if record.status != fault.status or (fault.error and record.error != fault.error):
        problems.append(f"{record.status} {record.error}, expected {fault.status} {fault.error}")
    cause = str(record.cause or "")
    problems += clear_message(cause, fault.cause)
    if "no FailureReason given" in cause:
        problems.append("the cause lost the error")
    if fault.retried and fault.retried not in retried_states(record.history):
        problems.append(f"{fault.retried} was not retried")
    if fault.notice:
        notices = [f"{n.get('Subject')}: {n['Message']}" for n in list(runtime.notifications())[notices_before:]]
        mine = [n for n in notices if record.execution_arn in n or record.name in n] or notices
        if not mine:
            problems.append("no notice was sent")
        else:
            problems += [f"notice: {p}" for p in clear_message(mine[-1], fault.notice)]
    if fault.machine == "TrainingStateMachine" and record.status == "FAILED" and "Input rejected" not in record.states_entered():
        marker = runtime.local_path(f"s3://{world.bucket}/runs/{record.name}/FAILED.txt")
        text = marker.read_text() if marker.is_file() else ""  # what the failed run wrote is marked partial
        if f"error: {record.error}\n" not in text or "partial" not in text:
            problems.append(f"runs/{record.name}/FAILED.txt: {text[:200]!r}")
    if problems:
        problems.append(f"cause: {cause[:600]}; states: {record.states_entered()}")
    judge(request, fault.id, FAULT, DESIGNED, problems, [], world.usable())
