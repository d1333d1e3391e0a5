"""EventBridge semantics, locally: patterns as the user guide defines them, target input, schedules, rules."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from sagestep.local.eventbridge import (
    InvalidEventPattern,
    InvalidSchedule,
    matches,
    parse_pattern,
    parse_schedule,
    rules_from_template,
    target_input,
    transform,
)
from sagestep.stack import template as tpl
from tests.conftest import REPO_ROOT

S3_EVENT = {
    "version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103", "detail-type": "Object Created", "source": "aws.s3",
    "account": "123456789012", "time": "2021-11-12T00:00:00Z", "region": "us-east-1",
    "resources": ["arn:aws:s3:::sagestep-dev-data-123456789012"],
    "detail": {"version": "0", "bucket": {"name": "sagestep-dev-data-123456789012"},
               "object": {"key": "datasets/credit_data/part-1.csv", "size": 5, "etag": "b1946ac9"},
               "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012", "source-ip-address": "10.0.0.7",
               "reason": "PutObject"},
}


def pattern_matches(pattern: dict, event: dict = S3_EVENT) -> bool:
    return matches(parse_pattern(pattern), event)


@pytest.mark.parametrize("pattern, expected", [
    ({"source": ["aws.s3"]}, True),
    ({"source": ["aws.s3", "aws.ec2"]}, True),
    ({"source": ["AWS.S3"]}, False),  # exact values are case-sensitive
    ({"detail": {"object": {"key": [{"prefix": "datasets/"}]}}}, True),
    ({"detail": {"object": {"key": [{"prefix": "configs/"}]}}}, False),
    ({"detail": {"object": {"key": [{"prefix": {"equals-ignore-case": "DATASETS/"}}]}}}, True),
    ({"detail": {"object": {"key": [{"suffix": ".csv"}]}}}, True),
    ({"detail": {"object": {"key": [{"suffix": {"equals-ignore-case": ".CSV"}}]}}}, True),
    ({"detail": {"reason": [{"equals-ignore-case": "putobject"}]}}, True),
    ({"detail": {"object": {"key": [{"wildcard": "datasets/*/part-*.csv"}]}}}, True),
    ({"detail": {"object": {"key": [{"wildcard": "datasets/*.parquet"}]}}}, False),
    ({"detail": {"reason": [{"anything-but": "CopyObject"}]}}, True),
    ({"detail": {"reason": [{"anything-but": ["PutObject", "CopyObject"]}]}}, False),
    ({"detail": {"object": {"key": [{"anything-but": {"prefix": "datasets/"}}]}}}, False),
    ({"detail": {"object": {"key": [{"anything-but": {"suffix": [".json", ".yaml"]}}]}}}, True),
    ({"detail": {"object": {"size": [{"numeric": [">", 0, "<=", 5]}]}}}, True),
    ({"detail": {"object": {"size": [{"numeric": [">", 5]}]}}}, False),
    ({"detail": {"object": {"size": [{"numeric": ["=", 5]}]}}}, True),
    ({"detail": {"object": {"etag": [{"numeric": [">", 0]}]}}}, False),  # numeric never matches a string
    ({"detail": {"object": {"version-id": [{"exists": False}]}}}, True),
    ({"detail": {"object": {"version-id": [{"exists": True}]}}}, False),
    ({"detail": {"object": [{"exists": True}]}}, False),  # exists is about leaves: an object is not one
    ({"detail": {"source-ip-address": [{"cidr": "10.0.0.0/24"}]}}, True),
    ({"detail": {"source-ip-address": [{"cidr": "10.0.1.0/24"}]}}, False),
    ({"$or": [{"source": ["aws.ec2"]}, {"detail": {"reason": ["PutObject"]}}]}, True),
    ({"$or": [{"source": ["aws.ec2"]}, {"detail": {"reason": ["CopyObject"]}}]}, False),
    ({"resources": ["arn:aws:s3:::sagestep-dev-data-123456789012"]}, True),  # any element of an event array
    ({"detail": {"missing": {"deeper": [{"exists": False}]}}}, True),
])
def test_patterns_match_as_the_eventbridge_user_guide_defines(pattern, expected):
    assert pattern_matches(pattern) is expected


def test_null_empty_string_booleans_and_numbers_are_distinct_values():
    event = {"detail": {"a": None, "b": "", "c": True, "d": 1}}
    assert pattern_matches({"detail": {"a": [None]}}, event)
    assert not pattern_matches({"detail": {"a": [""]}}, event)
    assert pattern_matches({"detail": {"b": [""]}}, event) and not pattern_matches({"detail": {"b": [None]}}, event)
    assert not pattern_matches({"detail": {"d": [True]}}, event) and not pattern_matches({"detail": {"c": [1]}}, event)
    assert pattern_matches({"detail": {"a": [{"exists": True}]}}, event)  # null exists
    assert pattern_matches({"detail": {"a": [{"anything-but": "x"}]}}, event)  # null matches anything-but
    assert not pattern_matches({"detail": {"zzz": [{"anything-but": "x"}]}}, event)  # absence does not


def test_arrays_of_objects_in_the_event_are_matched_element_by_element():
    event = {"detail": {"employees": [{"firstName": "John"}, {"firstName": "Anna"}]}}
    assert pattern_matches({"detail": {"employees": {"firstName": ["Anna"]}}}, event)
    assert not pattern_matches({"detail": {"employees": {"firstName": ["Otto"]}}}, event)


@pytest.mark.parametrize("pattern, message", [
    ({"source": "aws.s3"}, "must be an object or an array"),
    ({"source": []}, "Empty arrays are not allowed"),
    ({}, "Empty objects are not allowed"),
    ({"detail": [{"a": ["b"]}]}, "Unrecognized match type a"),
    ({"detail": {"key": [{"prefix": "a", "suffix": "b"}]}}, "Only one key allowed"),
    ({"detail": {"key": [{"wildcard": "a**b"}]}}, "Consecutive wildcard"),
    ({"detail": {"n": [{"numeric": [">", 5, "<", 1]}]}}, "Bottom must be less than top"),
    ({"detail": {"n": [{"numeric": ["<", 5, ">", 1]}]}}, "a numeric range is"),
    ({"detail": {"x": [{"exists": "yes"}]}}, "either true or false"),
    ({"detail": {"x": [{"anything-but": ["a", 1]}]}}, "all values must be strings or all numbers"),
    ({"$or": [{"source": ["a"]}]}, "at least two"),
    ({"detail": {"ip": [{"cidr": "10.0.0.300/8"}]}}, "Malformed CIDR"),
])
def test_invalid_patterns_are_refused_as_put_rule_refuses_them(pattern, message):
    with pytest.raises(InvalidEventPattern, match=message):
        parse_pattern(pattern)


# The user guide's InputTransformer example (EC2 instance state change).
EC2_EVENT = {"version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602", "detail-type": "EC2 Instance State-change Notification",
             "source": "aws.ec2", "account": "123456789012", "time": "2015-11-11T21:29:54Z", "region": "us-east-1",
             "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
             "detail": {"instance-id": "i-0123456789", "state": "RUNNING"}}
PATHS = {"timestamp": "$.time", "instance": "$.detail.instance-id", "state": "$.detail.state", "resource": "$.resources[0]"}
RULE_ARN = "arn:aws:events:us-east-2:123456789012:rule/example"


@pytest.mark.parametrize("template, expected", [
    ('"instance <instance> is in <state>"', '"instance i-0123456789 is in RUNNING"'),
    ('{"instance": <instance>, "state": <state>}', {"instance": "i-0123456789", "state": "RUNNING"}),
    ('{"instance": <instance>, "state": "<state>", "instanceStatus": "instance \\"<instance>\\" is in <state>"}',
     {"instance": "i-0123456789", "state": "RUNNING", "instanceStatus": 'instance "i-0123456789" is in RUNNING'}),
    ('{"instance": <instance>, "state": [9, <state>, true], "Transformed": "Yes"}',
     {"instance": "i-0123456789", "state": [9, "RUNNING", True], "Transformed": "Yes"}),
    ('"<aws.events.rule-name> triggered"', '"example triggered"'),
])
def test_input_transformer_output_equals_the_documented_example(template, expected):
    out = transform({"InputPathsMap": PATHS, "InputTemplate": template}, EC2_EVENT, "example", RULE_ARN, "2015-11-11T21:29:55Z")
    if isinstance(expected, dict):
        assert json.loads(out) == expected
    else:
        assert out == expected


def test_input_transformer_predefined_variables_carry_the_rule_and_the_original_event():
    out = json.loads(transform({"InputPathsMap": PATHS, "InputTemplate": '{"ruleArn": <aws.events.rule-arn>, "original": '
                                '<aws.events.event.json>, "envelope": <aws.events.event>}'}, EC2_EVENT, "example", RULE_ARN, "t"))
    assert out["ruleArn"] == RULE_ARN and out["original"] == EC2_EVENT
    assert "detail" not in out["envelope"] and out["envelope"]["id"] == EC2_EVENT["id"]


def test_target_input_is_the_constant_input_the_path_or_else_the_whole_event():
    assert target_input({"Input": '{"a": 1}'}, EC2_EVENT, "r", RULE_ARN, "t") == '{"a": 1}'
    assert json.loads(target_input({"InputPath": "$.detail"}, EC2_EVENT, "r", RULE_ARN, "t")) == EC2_EVENT["detail"]
    assert json.loads(target_input({}, EC2_EVENT, "r", RULE_ARN, "t")) == EC2_EVENT


def test_schedules_follow_aws_rate_and_cron_syntax_in_utc():
    start = dt.datetime(2026, 11, 29, 7, 30, tzinfo=dt.timezone.utc)
    assert parse_schedule("rate(1 hour)")(start) == start + dt.timedelta(hours=1)
    assert parse_schedule("rate(15 minutes)")(start) == start + dt.timedelta(minutes=15)
    monday_3am = parse_schedule("cron(0 3 ? * MON *)")(start)
    assert (monday_3am.weekday(), monday_3am.hour, monday_3am.minute) == (0, 3, 0) and monday_3am > start
    assert parse_schedule("cron(0/15 * * * ? *)")(start) == start.replace(minute=45)
    for bad in ("rate(1 hours)", "rate(2 hour)", "cron(0 12 * * * *)", "every hour", "rate(0 minutes)"):
        with pytest.raises(InvalidSchedule):
            parse_schedule(bad)


def test_every_rule_and_schedule_of_the_template_is_read_with_its_state():
    resolver = tpl.Resolver(tpl.load_template(REPO_ROOT / "template.yaml"),
                            tpl.StackContext(stack_name="sagestep-local", account_id="123456789012", region="us-east-1"), {},
                            custom_attributes=lambda *a: "s3://bundle/")
    rules = {rule.logical_id: rule for rule in rules_from_template(resolver, resolver.stack)}
    schedules = [r for r in rules.values() if r.schedule]
    patterns = [r for r in rules.values() if r.pattern]
    assert schedules and patterns
    assert all(parse_schedule(r.schedule) for r in schedules)
    assert all(not r.enabled for r in schedules)  # the template's schedules default to DISABLED
    # every target is a state machine, or the audit recorder function (the audit rules, issue 14)
    assert all(t.arn.startswith("arn:aws:states:") or t.arn.endswith(":function:sagestep-local-AuditRecorderFunction")
               for r in rules.values() for t in r.targets)


def _template_rules(**overrides: str) -> dict[str, object]:
    resolver = tpl.Resolver(tpl.load_template(REPO_ROOT / "template.yaml"),
                            tpl.StackContext(stack_name="sagestep-local", account_id="123456789012", region="us-east-1"),
                            overrides, custom_attributes=lambda *a: "s3://bundle/")
    return {rule.logical_id: rule for rule in rules_from_template(resolver, resolver.stack)}


def _sample(name: str) -> dict:
    return json.loads((REPO_ROOT / "events" / f"rule_{name}.json").read_text())


def _near(event: dict, path: list[str], value: object) -> dict:
    changed = json.loads(json.dumps(event))
    target = changed
    for key in path[:-1]:
        target = target[key]
    if value is None:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value
    return changed


RETRAIN = "TrainingStateMachineRetrainOnNewData"
DEPLOY = "DeploymentStateMachineDeployOnApproval"


@pytest.mark.parametrize("rule_id, sample, near_misses", [
    (RETRAIN, "training_state_machine_retrain_on_new_data", [
        (["detail-type"], "Object Deleted"),
        (["detail", "bucket", "name"], "someone-elses-bucket"),
        (["detail", "object", "key"], "configs/credit_data.yaml"),  # not under datasets/<dataset>/
        (["detail", "object", "key"], "datasets/credit_data.csv"),  # no dataset folder
        (["source"], "aws.sagemaker"),
    ]),
    (DEPLOY, "deployment_state_machine_deploy_on_approval", [
        (["detail", "ModelApprovalStatus"], "PendingManualApproval"),
        (["detail", "ModelApprovalStatus"], "Rejected"),
        (["detail", "ModelPackageGroupName"], "sagestep-prod-credit-data"),  # another environment's line
        (["detail", "UpdatedModelPackageFields"], ["CustomerMetadataProperties"]),  # recording a deployment
        (["detail-type"], "SageMaker Model Package Group State Change"),
    ]),
])
def test_each_template_rule_fires_on_its_event_and_not_on_near_misses(rule_id, sample, near_misses):
    rule = _template_rules()[rule_id]
    event = _sample(sample)
    assert matches(rule.pattern, event)
    for path, value in near_misses:
        assert not matches(rule.pattern, _near(event, path, value)), (path, value)


def test_the_approval_rule_fires_on_an_approval_and_on_a_package_registered_approved():
    rule = _template_rules()[DEPLOY]
    event = _sample("deployment_state_machine_deploy_on_approval")
    assert matches(rule.pattern, _near(event, ["detail", "UpdatedModelPackageFields"], ["ModelApprovalStatus"]))
    assert matches(rule.pattern, _near(event, ["detail", "UpdatedModelPackageFields"], None))


def test_rules_set_disabled_in_the_parameters_are_read_disabled():
    rules = _template_rules(DeployOnApprovalState="DISABLED", RetrainOnNewDataState="DISABLED")
    assert not rules[DEPLOY].enabled and not rules[RETRAIN].enabled
    assert _template_rules()[DEPLOY].enabled and _template_rules()[RETRAIN].enabled
