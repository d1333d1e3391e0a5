"""`sagestep validate`, errors family: Retry/Catch names a state can really fail with, no permanent error retried
for minutes, heartbeat below timeout, Map concurrency within AWS's limits; and the cross-field rules of
aws.service_rules on the evaluated requests (parameters family). GIVEN a copy of the project with ONE fault."""

from __future__ import annotations

import json

import pytest

from sagestep import validate
from tests.static import validate_helpers as h

pytestmark = pytest.mark.static


def findings(root, *families):
    return [f.render() for f in validate.run(root / "template.yaml", skip_sam=True, only=set(families))]


@pytest.fixture()
def project(tmp_path):
    return h.copy_project(tmp_path)


def test_the_project_names_only_errors_that_can_occur(project):
    assert findings(project, "errors") == []


def test_a_name_without_a_service_prefix_never_matches(project):
    machine_id, path, definition, state_path, state = h.find_task(project, "createTrainingJob.sync")
    state["Retry"][0]["ErrorEquals"].append("ThrottlingException")
    h.write_json(path, definition)
    messages = findings(project, "errors")
    assert any(f'state "{" > ".join(state_path)}"' in m and "'ThrottlingException' can never occur here" in m for m in messages), messages


def test_the_optimized_name_on_an_aws_sdk_task_never_matches(project):
    machine_id, path, definition, state_path, state = h.find_task(project, "aws-sdk:sagemaker:createModelPackage")
    state["Retry"][0]["ErrorEquals"] = ["SageMaker.AmazonSageMakerException"]
    h.write_json(path, definition)
    messages = findings(project, "errors")
    assert any("'SageMaker.AmazonSageMakerException' can never occur here" in m and "SageMaker.SageMakerException" in m
               for m in messages), messages


def test_a_lambda_error_that_no_function_raises_is_reported_and_one_it_defines_is_not(project):
    machine_id, path, definition, state_path, state = h.find_task(project, "lambda:invoke")
    state.setdefault("Catch", []).insert(0, {"ErrorEquals": ["NoSuchErrorClass"], "Next": state["Catch"][-1]["Next"]})
    state["Catch"].insert(0, {"ErrorEquals": ["ValueError"], "Next": state["Catch"][-1]["Next"]})
    h.write_json(path, definition)
    messages = findings(project, "errors")
    assert any("'NoSuchErrorClass' can never occur" in m for m in messages), messages
    assert not any("'ValueError'" in m for m in messages), messages


def test_generic_names_retried_for_minutes_are_reported(project):
    machine_id, path, definition, state_path, state = h.find_task(project, "aws-sdk:sagemaker:createModelPackage")
    state["Retry"] = [{"ErrorEquals": ["SageMaker.SageMakerException"], "IntervalSeconds": 30, "BackoffRate": 2.0, "MaxAttempts": 5}]
    h.write_json(path, definition)
    messages = findings(project, "errors")
    assert any(f'state "{" > ".join(state_path)}"' in m and "waits up to 930 s" in m and "permanent errors" in m for m in messages), messages


def test_states_runtime_is_never_caught(project):
    machine_id, path, definition, state_path, state = h.find_task(project, "createTrainingJob.sync")
    state["Catch"][0]["ErrorEquals"] = ["States.Runtime"]
    h.write_json(path, definition)
    assert any("States.Runtime is never retried or caught" in m for m in findings(project, "errors"))


def test_heartbeat_below_timeout(project):
    # rule heartbeat-below-timeout
    machine_id, path, definition, state_path, state = h.find_task(project, "createTrainingJob.sync")
    state["TimeoutSeconds"], state["HeartbeatSeconds"] = 600, 600
    h.write_json(path, definition)
    assert any("HeartbeatSeconds 600 must be smaller than TimeoutSeconds 600" in m for m in findings(project, "errors"))


def test_inline_map_concurrency_over_40(project):
    # rule inline-map-concurrency
    for machine_id, resource in h.machines(project).items():
        path = project / resource["Properties"]["DefinitionUri"]
        definition = json.loads(path.read_text())
        for state_path, state in h.all_states(definition):
            if state.get("Type") == "Map":
                state["MaxConcurrency"] = 100
                h.write_json(path, definition)
                messages = findings(project, "errors")
                assert any("an Inline Map runs at most 40 iterations at once" in m for m in messages), messages
                return
    pytest.skip("no Map state in the project")


def test_serverless_config_with_capture_is_reported_by_the_parameters_check(project):
    # rule serverless-without-data-capture, checked on the evaluated request
    machine_id, path, definition, state_path, state = h.find_task(project, "createEndpointConfig")
    variant = state["Parameters"]["ProductionVariants"][0]
    for key in ("InstanceType", "InitialInstanceCount", "InitialInstanceCount.$"):
        variant.pop(key, None)
    variant["ServerlessConfig"] = {"MemorySizeInMB": 2048, "MaxConcurrency": 20}
    h.write_json(path, definition)
    messages = findings(project, "parameters")
    assert any("[serverless-without-data-capture]" in m for m in messages), messages
