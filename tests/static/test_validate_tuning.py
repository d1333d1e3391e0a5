"""`sagestep validate` covers the training machine's hyperparameter tuning Task: its IAM (the tuning actions and
the managed EventBridge rule of its .sync), its evaluated request against botocore's model, and its error names.
GIVEN a copy of the project with ONE fault."""

from __future__ import annotations

import pytest

from sagestep import validate
from tests.static import validate_helpers as h

pytestmark = pytest.mark.static
TUNING = "createHyperParameterTuningJob.sync"


def findings(root, *families):
    return [f.render() for f in validate.run(root / "template.yaml", skip_sam=True, only=set(families))]


@pytest.fixture()
def project(tmp_path):
    return h.copy_project(tmp_path)


@pytest.mark.parametrize("action", ["sagemaker:CreateHyperParameterTuningJob", "sagemaker:DescribeHyperParameterTuningJob",
                                    "sagemaker:StopHyperParameterTuningJob"])
def test_a_tuning_action_missing_from_the_role_is_reported(project, action):
    machine_id, *_ = h.find_task(project, TUNING)
    h.remove_action(project, machine_id, action)
    messages = findings(project, "iam")
    assert any(f"does not grant {action}" in m and "Tune hyperparameters" in m for m in messages), messages


def test_the_tuning_sync_rule_missing_from_the_role_is_reported(project):
    machine_id, *_ = h.find_task(project, TUNING)
    template = project / "template.yaml"
    text = template.read_text()
    rule = '                  - !Sub "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/StepFunctionsGetEventsForSageMakerTuningJobsRule"\n'
    assert rule in text
    template.write_text(text.replace(rule, "", 1))
    messages = findings(project, "iam")
    assert any("StepFunctionsGetEventsForSageMakerTuningJobsRule" in m and "Tune hyperparameters" in m for m in messages), messages


def test_a_tuning_request_field_botocore_does_not_know_is_reported(project):
    machine_id, path, definition, state_path, state = h.find_task(project, TUNING)
    state["Parameters"]["TrainingJobDefinition"]["AlgorithmSpecification"]["ContainerEntrypoint"] = ["python3", "train.py"]
    h.write_json(path, definition)
    messages = findings(project, "parameters")
    assert any("Tune hyperparameters" in m and "ContainerEntrypoint" in m for m in messages), messages


def test_the_tuning_task_names_only_errors_it_can_raise(project):
    machine_id, path, definition, state_path, state = h.find_task(project, TUNING)
    state["Retry"][1]["ErrorEquals"] = ["SageMaker.SageMakerException"]  # the aws-sdk integration's name
    h.write_json(path, definition)
    messages = findings(project, "errors")
    assert any("Tune hyperparameters" in m and "'SageMaker.SageMakerException' can never occur here" in m
               for m in messages), messages
