"""`make demo`: the autopilot runs the lifecycle by the template's own rules and schedules. Every execution in the
scenario was started by the rule, schedule or execution expected — not by the demo's code — except the A/B test, which
a user starts."""

from __future__ import annotations

import json

import pytest

from sagestep.audit import records as audit
from sagestep.cli import main
from sagestep.local import LocalRuntime
from sagestep.local.bus import read_deliveries
from tests.conftest import BY_HAND, REPO_ROOT


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    workspace = tmp_path_factory.mktemp("demo-ws")
    code = main(["demo", "--workspace", str(workspace), "--template", str(REPO_ROOT / "template.yaml"), "--time-scale", "0.01"])
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


def test_every_decision_of_the_autopilots_life_cycle_is_in_the_audit_trail(demo):
    workspace, _ = demo
    runs = executions(workspace)
    trainings = {a for a in runs if a.split(":")[-2] == "sagestep-dev-training"}
    deployments = {a for a in runs if a.split(":")[-2] == "sagestep-dev-deployment"}
    [ab_test] = [a for a in runs if a.split(":")[-2] == "sagestep-dev-ab-test"]
    # WHEN the audit bucket of the demo's workspace is read (the cloud restarted on it, nothing running)
    with LocalRuntime(REPO_ROOT, workspace=workspace, time_scale=0.01, parameter_overrides=BY_HAND) as runtime:
        s3, bucket = runtime.client("s3"), runtime.bucket("AuditBucket")
        found: dict[str, list[dict]] = {}
        for _, record in audit.read(s3, bucket):
            audit.validate(record)
            found.setdefault(record["kind"], []).append(record)
    # THEN each decision the story made has its record: both trainings started and gated, the approval, every
    # deployment's start and outcome, the violations the schedule flagged, and the A/B test's final decision
    assert {r["subject"]["execution_arn"] for r in found["training_started"]} == trainings
    assert {r["subject"]["execution_arn"] for r in found["gate_decision"]} == trainings
    assert [r["actor"]["name"] for r in found["approval"]] == ["Ana Risk"]
    assert {r["subject"]["execution_arn"] for r in found["deployment_started"]} == deployments
    assert {r["subject"]["execution_arn"] for r in found["deployment_succeeded"]} == deployments
    assert "deployment_failed" not in found
    assert found["monitoring_violations"] and all(r["subject"]["endpoint_name"] == "sagestep-dev-credit-data"
                                                  for r in found["monitoring_violations"])
    assert all(r["evidence"]["Violations"] > 0 and r["reasons"] for r in found["monitoring_violations"])
    [decision] = found["ab_decision"]
    output = runs[ab_test]["output"]
    output = json.loads(output) if isinstance(output, str) else output
    assert decision["decision"] == output["Decision"]["Decision"], decision
