"""Model lines in the deployed definitions: nothing per line is declared, everything per line derives from the line."""

from __future__ import annotations

import json

import pytest

from sagestep.stack import template as tpl
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.static

TEMPLATE = tpl.load_template(REPO_ROOT / "template.yaml")


def machine(name: str) -> dict:
    return json.loads((REPO_ROOT / "statemachines" / f"{name}.asl.json").read_text())


def test_the_template_declares_no_group_endpoint_or_alarm_of_one_line():
    # GIVEN the template WHEN its resources are listed THEN no registry group or alarm belongs to one dataset: the
    # stack-wide alarms (issue 14) watch state machines, functions and monitoring across lines; the one endpoint alarm
    # (invocation anomalies) names its line only through the PrimaryModelLine parameter
    types = {r["Type"] for r in TEMPLATE["Resources"].values()}
    assert "AWS::SageMaker::ModelPackageGroup" not in types
    for logical_id, resource in TEMPLATE["Resources"].items():
        if resource["Type"] == "AWS::CloudWatch::Alarm" and "EndpointName" in json.dumps(resource):
            assert "${PrimaryModelLine}" in json.dumps(resource), logical_id
    assert "credit" not in json.dumps(TEMPLATE["Resources"]).replace("credit_data", "")


def test_approval_of_a_package_in_any_lines_group_starts_the_deployment():
    rule = TEMPLATE["Resources"]["DeploymentStateMachine"]["Properties"]["Events"]["DeployOnApproval"]["Properties"]
    assert rule["Pattern"]["detail"]["ModelPackageGroupName"] == [{"prefix": {"Fn::Sub": "sagestep-${Environment}-"}}]


def test_registration_goes_to_the_gates_line_and_a_new_line_gets_its_group_first():
    states = machine("training")["States"]
    assert states["Register model"]["Parameters"]["ModelPackageGroupName.$"] == "$.Gate.ModelPackageGroupName"
    assert states["Model line exists?"]["Default"] == "Create model line"
    assert states["Create model line"]["Next"] == "Register model"
    assert "Tags" not in states["Register model"]["Parameters"]  # a package in a group takes the group's tags


def test_every_endpoint_name_in_the_deployment_comes_from_the_package_line():
    text = json.dumps(machine("deployment"))
    assert "${EndpointName}" not in text and "$.Line.EndpointName" in text
    states = machine("deployment")["States"]
    assert states["Wrong model line"] == {"Type": "Fail", "Error": "WrongModelLine", "CausePath": "$.Line.Refusal"}
    rollback = states["Update endpoint"]["Parameters"]["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    assert [a["AlarmName.$"] for a in rollback] == [f"States.Format('{{}}-{s}', $.Line.EndpointName)"
                                                  for s in ("5xx", "latency", "model-errors")]


def test_monitoring_maps_over_the_lines_and_a_line_failure_does_not_stop_the_others():
    states = machine("monitoring")["States"]
    each = states["Monitor each model line"]
    assert each["Type"] == "Map" and each["ItemsPath"] == "$.Lines"
    inner = each["ItemProcessor"]["States"]
    assert not [s for s in inner.values() if s["Type"] == "Fail"]  # failures end the iteration in "Line failed"
    assert states["Any line failed?"]["Choices"][0]["Next"] == "Collect failures"
