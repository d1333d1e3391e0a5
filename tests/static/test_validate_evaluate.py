"""The pieces `sagestep validate` reasons with: intrinsic functions, JSONPath, IAM wildcard matching, boto3 scan."""

from __future__ import annotations

import hashlib

import pytest

from sagestep.validate import boto_scan, evaluate, iam
from sagestep.validate.values import is_unknown, unknown, worst_length
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.static

CONTEXT = {"Execution": {"Name": "run-1"}, "State": {"RetryCount": 2}}


@pytest.mark.parametrize(("expression", "expected"), [
    ("States.Format('{}-train-{}', $.Prefix, $$.State.RetryCount)", "abc-train-2"),
    ("States.Format('a\\{b\\}{}', $.Prefix)", "a{b}abc"),
    ("States.Hash($$.Execution.Name, 'MD5')", hashlib.md5(b"run-1").hexdigest()),
    ("States.JsonToString($.Obj)", '{"k":[1,2]}'),
    ("States.StringToJson('{\"a\": 1}')", {"a": 1}),
    ("States.ArrayGetItem(States.Array(1, 'x', true), 1)", "x"),
    ("States.MathAdd($$.State.RetryCount, 1)", 3),
    ("States.ArrayLength($.Obj.k)", 2),
    ("States.StringSplit('a,b;c', ',;')", ["a", "b", "c"]),
])
def test_intrinsic_functions_evaluate_like_step_functions(expression, expected):
    assert evaluate.eval_dynamic(expression, {"Prefix": "abc", "Obj": {"k": [1, 2]}}, CONTEXT, {}) == expected


def test_unknown_parts_stay_visible_with_their_bound():
    value = evaluate.eval_dynamic("States.Format('{}-{}', $.Known, $.Unknown)",
                                  {"Known": "ab", "Unknown": unknown("string", "Describe output", 10)}, CONTEXT, {})
    assert worst_length(value) == (13, [])
    unbounded = evaluate.eval_dynamic("States.Format('{}', $.Any)", {"Any": unknown()}, CONTEXT, {})
    assert worst_length(unbounded)[0] is None


def test_a_jsonata_substring_of_an_unknown_value_is_bounded_by_its_length():
    # GIVEN a name built from an unknown (a group name up to 63 characters) cut to 50, and a known substring
    bindings = {"states": {"input": {"Group": unknown("string", "DescribeModelPackage output", 63)}}}
    cut = evaluate.eval_jsonata("{% $substring($states.input.Group, 0, 50) & '-0123456789ab' %}", bindings, [], "x")
    # THEN its worst length is known (50 + 13), and known strings are cut as JSONata cuts them
    assert worst_length(cut) == (63, [])
    assert evaluate.eval_jsonata("{% $substring('sagestep-dev-credit', 13) %}", {}, [], "x") == "credit"
    assert worst_length(evaluate.eval_jsonata("{% $substring($states.input.Group, 3) %}", bindings, [], "x"))[0] is None


def test_a_missing_path_in_a_known_input_is_reported_and_a_bad_intrinsic_is_an_error():
    with pytest.raises(evaluate.Missing, match="'Nope' is not in the input"):
        evaluate.get_path("$.Nope", {"Yes": 1}, CONTEXT, {})
    with pytest.raises(evaluate.EvalError, match="States.Frobnicate is not an intrinsic function"):
        evaluate.eval_dynamic("States.Frobnicate($.Yes)", {"Yes": 1}, CONTEXT, {})


@pytest.mark.parametrize(("granted", "required", "expected"), [
    ("arn:aws:sagemaker:us-east-1:1:training-job/*", "arn:aws:sagemaker:us-east-1:1:training-job/run-1-train-0", True),
    ("arn:aws:sagemaker:us-east-1:1:model/*", "arn:aws:sagemaker:us-east-1:1:training-job/x", False),
    ("arn:aws:sagemaker:us-east-1:1:model-package/group/*", "arn:aws:sagemaker:us-east-1:1:model-package/*", True),
    ("arn:aws:lambda:us-east-1:1:function:f", "arn:aws:lambda:us-east-1:1:function:f:live", False),
    ("*", "arn:aws:s3:::bucket/key", True),
])
def test_resource_wildcards_match_on_both_sides(granted, required, expected):
    assert iam.globs_intersect(granted, required) is expected


def test_action_wildcards_are_case_insensitive():
    assert iam.action_matches("sagemaker:Describe*", "sagemaker:DescribeTrainingJob")
    assert iam.action_matches("S3:*", "s3:GetObject")
    assert not iam.action_matches("s3:Get*", "s3:PutObject")


def test_boto3_calls_are_followed_through_helpers_that_receive_the_client(tmp_path):
    (tmp_path / "helpers.py").write_text(
        "def read(client, bucket):\n    return client.get_object(Bucket=bucket, Key='k')\n"
        "def pages(sm):\n    return sm.get_paginator('list_model_packages')\n")
    (tmp_path / "app.py").write_text(
        "import boto3\nimport helpers\nfrom helpers import pages\n"
        "SNS = boto3.client('sns')\n"
        "def handler(event, context):\n"
        "    s3, sm = boto3.client('s3'), boto3.client('sagemaker')\n"
        "    helpers.read(s3, 'b')\n    pages(sm=sm)\n    SNS.publish(TopicArn='t', Message='m')\n"
        "    boto3.client('s3').upload_file('f', 'b', 'k')\n")
    calls = boto_scan.scan(tmp_path / "app.py", "handler", [tmp_path], tmp_path)
    assert {(c.service, c.operation) for c in calls} == {
        ("s3", "GetObject"), ("sagemaker", "ListModelPackages"), ("sns", "Publish"), ("s3", "PutObject")}


def test_jsonata_results_that_an_unknown_decides_stay_unknown():
    # GIVEN an input whose tags and job description are unknown (a service result, a StringToJson of an error cause)
    data = {"Tags": [{"Key": unknown("string", "tag key"), "Value": unknown("string", "tag value")}], "Mode": "split",
            "Job": unknown("any", "States.StringToJson")}
    expression = ("{% {'champion': ($t := $states.input.Tags[Key = 'owner'].Value; $exists($t) ? $t : ''), "
                  "'shadow': $states.input.Mode = 'shadow', 'reason': $states.input.Job.Name ? $states.input.Job.Name : 'none'} %}")
    # WHEN the expression is evaluated
    result = evaluate.eval_jsonata(expression, {"states": {"input": data}}, [], "Output")
    # THEN what an unknown decides (a filter on it, a field inside it) is unknown; what known values decide is known
    assert is_unknown(result["champion"]) and is_unknown(result["reason"])
    assert result["shadow"] is False


def test_a_map_over_a_known_list_has_one_output_per_item_and_visits_know_where_they_came_from():
    definition = {"StartAt": "Each", "States": {
        "Each": {"Type": "Map", "ItemsPath": "$.Items", "ResultPath": "$.Out", "Next": "Done",
                 "ItemProcessor": {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}}},
        "Done": {"Type": "Succeed"}}}
    walker = evaluate.Walker(evaluate.WalkSettings("run-1", "sm", "arn:aws:states:us-east-1:1:stateMachine:sm", "arn:aws:iam::1:role/r"))
    walker.run(definition, {"Items": ["a", "b", "c"]})
    visits = {v.path: v for v in walker.visits}
    assert visits[("Done",)].input["Out"][0] == "a" and len(visits[("Done",)].input["Out"]) == 3
    assert visits[("Each", "item", "Echo")].parents == [visits[("Each",)]] and visits[("Done",)].parents == [visits[("Each",)]]


def test_every_state_machine_event_is_an_input_of_its_machine():
    # events/<snake_case machine name>_<scenario>.json; an acronym is one word (ABTestStateMachine -> ab_test_...)
    from sagestep.validate.project import Project

    project = Project(REPO_ROOT / "template.yaml")
    used = {sample for machine in project.machines for sample, _ in machine.samples}
    # events/rule_<rule>.json are EventBridge events (the rules check reads them), not execution inputs
    events = {f"events/{p.name}" for p in (REPO_ROOT / "events").glob("*_state_machine_*.json") if not p.name.startswith("rule_")}
    assert events and events <= used, f"events no state machine reads: {sorted(events - used)}"
