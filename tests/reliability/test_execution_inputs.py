"""Bad execution inputs of every state machine, started as Step Functions would start them (StartExecution on the
shared local cloud). The machine's first state checks the input's shape and fails with InvalidExecutionInput naming
every bad field and what it must be; inputs of the right shape that point at nothing fail with a cause that names
what is missing. Nothing runs for a refused input, and the workspace answers its everyday commands after."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import load_event
from tests.reliability.catalogue import BAD_INPUT, CLEAR, DESIGNED, clear_message, judge

TRAINING = load_event("training_state_machine_credit_data")
DEPLOY = load_event("deployment_state_machine_approved")
BATCH = load_event("batch_inference_state_machine_credit_data")
HOURLY = load_event("monitoring_state_machine_hourly")
AB = load_event("ab_test_state_machine_split")
ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/sagestep-dev-credit-data/1"
DOOR = "InvalidExecutionInput"


@dataclass(frozen=True)
class Start:
    id: str
    machine: str
    input: Any
    expect: tuple[str, ...]
    error: str = DOOR
    outcome: str = CLEAR
    first_states: tuple[str, ...] = field(default=("Check input", "Input valid?", "Input rejected"))


def without(document: dict, *keys: str) -> dict:
    return {k: v for k, v in document.items() if k not in keys}


CASES = [
    # -- TrainingStateMachine --------------------------------------------------------------------------------------
    Start("training-array", "TrainingStateMachine", [TRAINING], ("must be a JSON object", "array")),
    Start("training-string", "TrainingStateMachine", "train please", ("must be a JSON object", "string")),
    Start("training-null", "TrainingStateMachine", None, ("must be a JSON object", "null")),
    Start("training-empty-object", "TrainingStateMachine", {}, ("DataS3Uri", "DatasetConfigS3Uri", "Algorithm", "got nothing")),
    Start("training-no-data-uri", "TrainingStateMachine", without(TRAINING, "DataS3Uri"), ("DataS3Uri", "is required")),
    Start("training-data-local-path", "TrainingStateMachine", {**TRAINING, "DataS3Uri": "/home/ana/credit.csv"},
          ("DataS3Uri", "s3://", "got /home/ana/credit.csv")),
    Start("training-data-http-url", "TrainingStateMachine", {**TRAINING, "DataS3Uri": "https://bucket.s3.amazonaws.com/d/"},
          ("DataS3Uri", "s3://")),
    Start("training-data-uri-number", "TrainingStateMachine", {**TRAINING, "DataS3Uri": 42}, ("DataS3Uri", "got 42")),
    Start("training-data-bucket-only", "TrainingStateMachine", {**TRAINING, "DataS3Uri": "s3://"}, ("DataS3Uri",)),
    Start("training-config-txt", "TrainingStateMachine", {**TRAINING, "DatasetConfigS3Uri": "s3://b/configs/credit.txt"},
          ("DatasetConfigS3Uri", ".yaml", "credit.txt")),
    Start("training-config-missing", "TrainingStateMachine", without(TRAINING, "DatasetConfigS3Uri"),
          ("DatasetConfigS3Uri", "is required")),
    Start("training-algorithm-unknown", "TrainingStateMachine", {**TRAINING, "Algorithm": "catboost"},
          ("Algorithm", "lightgbm", "xgboost", "got catboost")),
    Start("training-algorithm-case", "TrainingStateMachine", {**TRAINING, "Algorithm": "LightGBM"}, ("Algorithm", "got LightGBM")),
    Start("training-hyperparameters-string", "TrainingStateMachine", {**TRAINING, "Hyperparameters": "num_round=600"},
          ("Hyperparameters", "object of string values")),
    Start("training-hyperparameters-numbers", "TrainingStateMachine", {**TRAINING, "Hyperparameters": {"num_round": 600}},
          ("Hyperparameters", "strings", "num_round")),
    Start("training-hyperparameters-list", "TrainingStateMachine", {**TRAINING, "Hyperparameters": ["num_round", "600"]},
          ("Hyperparameters", "object")),
    Start("training-many-problems", "TrainingStateMachine", {"DataS3Uri": "x", "Algorithm": 1, "Hyperparameters": 3},
          ("DataS3Uri", "DatasetConfigS3Uri", "Algorithm", "Hyperparameters")),
    Start("training-new-object-no-key", "TrainingStateMachine", {"NewObject": {"Bucket": "b"}}, ("NewObject", "Key")),
    Start("training-new-object-outside-datasets", "TrainingStateMachine", {"NewObject": {"Bucket": "b", "Key": "uploads/x.csv"}},
          ("NewObject", "datasets/<dataset>/<file>", "uploads/x.csv")),
    Start("training-new-object-string", "TrainingStateMachine", {"NewObject": "s3://b/datasets/credit_data/x.csv"},
          ("NewObject", "Bucket")),
    # -- DeploymentStateMachine ------------------------------------------------------------------------------------
    Start("deployment-empty", "DeploymentStateMachine", {}, ("ModelPackageArn", "is required", "got nothing")),
    Start("deployment-group-name", "DeploymentStateMachine", {"ModelPackageArn": "sagestep-dev-credit-data"},
          ("ModelPackageArn", "versioned model package ARN", "sagestep models list")),
    Start("deployment-unversioned-arn", "DeploymentStateMachine",
          {"ModelPackageArn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/sagestep-dev-credit-data"},
          ("ModelPackageArn", "<version>")),
    Start("deployment-group-arn", "DeploymentStateMachine",
          {"ModelPackageArn": "arn:aws:sagemaker:us-east-1:123456789012:model-package-group/sagestep-dev-credit-data"},
          ("ModelPackageArn",)),
    Start("deployment-array", "DeploymentStateMachine", [DEPLOY], ("must be a JSON object", "array")),
    Start("deployment-missing-package", "DeploymentStateMachine",
          {"ModelPackageArn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/sagestep-dev-credit-data/99"},
          ("sagestep-dev-credit-data/99",), error="SageMaker.SageMakerException", outcome=DESIGNED,
          first_states=("Check input", "Input valid?", "Describe package")),
    # -- BatchInferenceStateMachine --------------------------------------------------------------------------------
    Start("batch-empty", "BatchInferenceStateMachine", {}, ("ModelPackageArn", "InputS3Uri", "OutputS3Uri")),
    Start("batch-input-local-path", "BatchInferenceStateMachine", {**BATCH, "InputS3Uri": "./batch/in"},
          ("InputS3Uri", "s3://", "got ./batch/in")),
    Start("batch-output-missing", "BatchInferenceStateMachine", without(BATCH, "OutputS3Uri"), ("OutputS3Uri", "is required")),
    Start("batch-package-name", "BatchInferenceStateMachine", {**BATCH, "ModelPackageArn": "credit-data/1"},
          ("ModelPackageArn", "versioned model package ARN")),
    # -- MonitoringStateMachine ------------------------------------------------------------------------------------
    Start("monitoring-empty", "MonitoringStateMachine", {},
          ("ScheduleName", "WindowHours", "EndOffsetHours", "MergeStartOffset", "MergeEndOffset")),
    Start("monitoring-window-zero", "MonitoringStateMachine", {**HOURLY, "WindowHours": 0}, ("WindowHours", ">= 1", "got 0")),
    Start("monitoring-window-fraction", "MonitoringStateMachine", {**HOURLY, "WindowHours": 1.5}, ("WindowHours", "whole number")),
    Start("monitoring-window-string", "MonitoringStateMachine", {**HOURLY, "WindowHours": "1"}, ("WindowHours", "got 1")),
    Start("monitoring-end-offset-future", "MonitoringStateMachine", {**HOURLY, "EndOffsetHours": 2}, ("EndOffsetHours", "<= 1", "got 2")),
    Start("monitoring-offset-not-duration", "MonitoringStateMachine", {**HOURLY, "MergeStartOffset": "3 hours ago"},
          ("MergeStartOffset", "ISO-8601", "3 hours ago")),
    Start("monitoring-offset-empty-duration", "MonitoringStateMachine", {**HOURLY, "MergeEndOffset": "-P"},
          ("MergeEndOffset", "ISO-8601")),
    Start("monitoring-schedule-with-slash", "MonitoringStateMachine", {**HOURLY, "ScheduleName": "hourly/eu"},
          ("ScheduleName", "hourly/eu")),
    Start("monitoring-model-line-spaces", "MonitoringStateMachine", {**HOURLY, "ModelLine": "credit data"},
          ("ModelLine", "credit data")),
    Start("monitoring-batch-capture-path", "MonitoringStateMachine", {**HOURLY, "BatchCaptureS3Uri": "batch-capture/"},
          ("BatchCaptureS3Uri", "s3://")),
    # -- ABTestStateMachine ----------------------------------------------------------------------------------------
    Start("ab-empty", "ABTestStateMachine", {}, ("ChallengerModelPackageArn", "is required")),
    Start("ab-share-one", "ABTestStateMachine", {**AB, "TrafficShare": 1}, ("TrafficShare", "between 0 and 1", "got 1")),
    Start("ab-share-percent", "ABTestStateMachine", {**AB, "TrafficShare": 10}, ("TrafficShare", "got 10")),
    Start("ab-mode-unknown", "ABTestStateMachine", {**AB, "Mode": "paired"}, ("Mode", "split", "shadow", "got paired")),
    Start("ab-looks-zero", "ABTestStateMachine", {**AB, "Looks": 0}, ("Looks", ">= 1")),
    Start("ab-alpha-above-one", "ABTestStateMachine", {**AB, "Alpha": 5}, ("Alpha", "between 0 and 1")),
    Start("ab-interval-negative", "ABTestStateMachine", {**AB, "LookIntervalSeconds": -60}, ("LookIntervalSeconds", ">= 0")),
    Start("ab-merge-offset-bad", "ABTestStateMachine", {**AB, "MergeEndOffset": "5 minutes"}, ("MergeEndOffset", "ISO-8601")),
    Start("ab-guardrails-number", "ABTestStateMachine", {**AB, "Guardrails": 30}, ("Guardrails", "an object")),
]


@pytest.fixture(scope="module")
def started(world) -> dict[str, str]:
    """Every case's execution, started at once (as many clients would): each test then follows its own."""
    return {case.id: world.runtime.start(case.machine, case.input) for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_execution_input_fails_at_the_door_naming_each_field(case: Start, world, started, request):
    # GIVEN the shared local cloud; WHEN an execution starts with the bad input
    record = world.runtime.wait(started[case.id], timeout=120)
    # THEN it fails with the designed error, its cause naming each bad field and what it must be; nothing else ran
    problems = []
    if record.status != "FAILED" or record.error != case.error:
        problems.append(f"{record.status} {record.error}, expected FAILED {case.error}")
    cause = str(record.cause or "")
    problems += clear_message(cause, case.expect)
    entered = tuple(record.states_entered()[:3])
    if entered != case.first_states:
        problems.append(f"states entered {entered}, expected {case.first_states}")
    if case.error == DOOR and len(record.states_entered()) != 3:
        problems.append(f"more ran after the refusal: {record.states_entered()}")
    if problems:
        problems.append(f"cause: {cause[:800]}")
    judge(request, case.id, BAD_INPUT, case.outcome, problems, [], world.usable(registry=False))
