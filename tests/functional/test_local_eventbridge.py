"""EventBridge in the local cloud: events shaped as AWS emits them reach the template's rules, which start state
machines with the input their targets define; schedules fire on the cloud's clock; every event is recorded."""

from __future__ import annotations

import json
import time

import pytest

from sagestep.local import LocalRuntime
from sagestep.local.bus import read_events
from tests.conftest import REPO_ROOT

HERE = REPO_ROOT / "tests" / "functional"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    with LocalRuntime(HERE, workspace=tmp_path_factory.mktemp("events-ws"), template_path=HERE / "events_template.yaml",
                      time_scale=0.01) as rt:
        yield rt


def executions(runtime: LocalRuntime) -> list[dict]:
    sfn = runtime.client("stepfunctions")
    arn = runtime.state_machines["RecorderStateMachine"].arn
    found = sfn.list_executions(stateMachineArn=arn)["executions"]
    return [json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"]) for e in found]


def wait_for(condition, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    return condition()


def test_an_object_created_in_a_bucket_with_eventbridge_on_starts_the_rule_target_with_its_transformed_input(runtime):
    s3 = runtime.client("s3")
    s3.put_object(Bucket=runtime.bucket("DropBucket"), Key="in/a.csv", Body=b"x\n1\n")
    started = wait_for(lambda: [i for i in executions(runtime) if i.get("Key") == "in/a.csv"])
    assert started == [{"Key": "in/a.csv", "Reason": "PutObject", "Rule": "sagestep-local-RecorderStateMachineOnDrop"}]
    record = next(r for r in read_events(runtime.workspace.root / "events.jsonl", 100)
                  if r["event"].get("detail", {}).get("object", {}).get("key") == "in/a.csv")
    event = record["event"]
    assert (event["source"], event["detail-type"], event["detail"]["reason"]) == ("aws.s3", "Object Created", "PutObject")
    assert event["detail"]["object"]["size"] == 4 and event["detail"]["bucket"]["name"] == runtime.bucket("DropBucket")
    assert record["matched"] == ["sagestep-local-RecorderStateMachineOnDrop"]


def test_near_misses_and_buckets_without_eventbridge_start_nothing_but_are_recorded(runtime):
    s3 = runtime.client("s3")
    s3.put_object(Bucket=runtime.bucket("DropBucket"), Key="elsewhere/b.csv", Body=b"x")  # wrong prefix
    s3.put_object(Bucket=runtime.bucket("QuietBucket"), Key="in/c.csv", Body=b"x")  # no EventBridge on this bucket
    recorded = wait_for(lambda: [r for r in read_events(runtime.workspace.root / "events.jsonl", 100)
                                 if r["event"].get("detail", {}).get("object", {}).get("key") == "elsewhere/b.csv"])
    assert recorded[0]["matched"] == [] and recorded[0]["deliveries"] == []
    assert not any(r["event"].get("detail", {}).get("bucket", {}).get("name") == runtime.bucket("QuietBucket")
                   for r in read_events(runtime.workspace.root / "events.jsonl", 100))
    time.sleep(1)
    assert not [i for i in executions(runtime) if i.get("Key") in ("elsewhere/b.csv", "in/c.csv")]


def test_put_events_from_a_client_reaches_rules_and_numeric_patterns_filter(runtime):
    events = runtime.client("events")
    answer = events.put_events(Entries=[
        {"Source": "sagestep.test", "DetailType": "Ping", "Detail": json.dumps({"size": 42, "who": "client"})},
        {"Source": "sagestep.test", "DetailType": "Ping", "Detail": json.dumps({"size": 3, "who": "too small"})},
    ])
    assert answer["FailedEntryCount"] == 0
    assert wait_for(lambda: [i for i in executions(runtime) if i.get("who") == "client"]) == [{"size": 42, "who": "client"}]
    assert not [i for i in executions(runtime) if i.get("who") == "too small"]


def test_a_target_input_that_is_not_json_fails_the_delivery_and_says_so(runtime):
    runtime.client("events").put_events(Entries=[{"Source": "sagestep.test", "DetailType": "Broken", "Detail": "{}"}])
    failed = wait_for(lambda: [d for r in read_events(runtime.workspace.root / "events.jsonl", 100)
                               for d in r["deliveries"] if d["rule"].endswith("OnBroken")])
    assert failed[0]["error"] == "InvalidExecutionInput" and "execution" not in failed[0]


def test_enabled_schedules_fire_on_the_clock_and_disabled_ones_never(runtime):
    # rate(1 minute) at time scale 0.01: every 0.6 s of real time
    ticks = wait_for(lambda: len([i for i in executions(runtime) if i.get("Tick")]) >= 2, timeout=30)
    assert ticks
    assert not [i for i in executions(runtime) if i.get("Off")]
