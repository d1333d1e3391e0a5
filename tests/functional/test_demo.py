"""`make demo`: the autopilot runs the lifecycle by the template's own rules and schedules. Every execution in the
scenario was started by the rule, schedule or execution expected — not by the demo's code — except the A/B test, which
a user starts."""

from __future__ import annotations

import json

import pytest

from sagestep.cli import main
from sagestep.local.bus import read_deliveries
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    workspace = tmp_path_factory.mktemp("demo-ws")
    code = main(["demo", "--workspace", str(workspace), "--template", str(REPO_ROOT / "template.yaml")])
    return workspace, code


def executions(workspace) -> dict[str, dict]:
    """Every execution the local cloud ran: {arn: its describe record}."""
    found = {}
    for path in (workspace / "executions").glob("*/*.json"):
        record = json.loads(path.read_text())["execution"]
        found[record["executionArn"]] = record
    return found


def test_the_demo_ends_well(demo):
    _, code = demo
    assert code == 0


def test_every_execution_was_started_by_the_expected_rule_schedule_or_execution(demo):
    workspace, _ = demo
    started_by_rule = {d["execution"]: d["rule"] for d in read_deliveries(workspace / "events.jsonl") if "execution" in d}
    runs = executions(workspace)
    by_machine: dict[str, list[str]] = {}
    for arn, record in runs.items():
        machine = arn.split(":")[-2]
        execution_input = record["input"] if isinstance(record["input"], dict) else json.loads(record["input"] or "{}")
        parent = execution_input.get("AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID")
        if arn in started_by_rule:
            starter = started_by_rule[arn]
        elif parent:
            starter = "execution:" + parent.split(":")[-2]
        else:
            starter = "client"
        by_machine.setdefault(machine, []).append(starter)
    assert sorted(by_machine["sagestep-dev-training"]) == sorted([
        "execution:sagestep-dev-monitoring", "sagestep-local-TrainingStateMachineRetrainOnNewData"]), by_machine
    assert set(by_machine["sagestep-dev-deployment"]) == {"sagestep-local-DeploymentStateMachineDeployOnApproval"}, by_machine
    assert set(by_machine["sagestep-dev-monitoring"]) == {"sagestep-local-MonitoringStateMachineMonitorOnSchedule"}, by_machine
    # the one execution a user starts in the story: the A/B test of the retrained challenger
    assert by_machine["sagestep-dev-ab-test"] == ["client"], by_machine
