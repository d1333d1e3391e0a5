"""Resolving template.yaml's intrinsics to local names, and the job-name rule of the training machine."""

from __future__ import annotations

import json
import re

import jsonata
import pytest

from sagestep.stack import template as tpl
from tests.conftest import REPO_ROOT

STACK = tpl.StackContext(stack_name="sagestep-local")


def resolver(**overrides: str) -> tpl.Resolver:
    return tpl.Resolver(
        tpl.load_template(REPO_ROOT / "template.yaml"),
        STACK,
        overrides,
        custom_attributes=lambda logical_id, attribute, props: f"s3://{props['BucketName']}/code/v1/",
    )


def test_substitutions_resolve_refs_getatts_and_subs_to_local_names():
    machines = tpl.state_machines(resolver(), REPO_ROOT)
    subs = machines["TrainingStateMachine"].substitutions
    assert subs["ArtifactsBucketName"] == "sagestep-dev-artifacts-123456789012"
    assert subs["SageMakerRoleArn"] == "arn:aws:iam::123456789012:role/sagestep-dev-sagemaker"
    assert subs["CodeS3Uri"] == "s3://sagestep-dev-artifacts-123456789012/code/v1/"
    assert subs["QualityGateFunctionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:sagestep-local-QualityGateFunction"
    assert subs["NotificationTopicArn"] == "arn:aws:sns:us-east-1:123456789012:sagestep-dev-notifications"


def test_parameter_overrides_change_names_and_unknown_or_invalid_ones_are_errors():
    subs = tpl.state_machines(resolver(Environment="prod"), REPO_ROOT)["DeploymentStateMachine"].substitutions
    assert subs["ModelLinePrefix"] == "sagestep-prod-"
    with pytest.raises(tpl.TemplateError, match="Enviroment"):
        resolver(Enviroment="prod")
    with pytest.raises(tpl.TemplateError, match="AllowedValues"):
        resolver(Environment="staging")


def test_getatt_to_a_missing_resource_names_it():
    document = tpl.load_template(REPO_ROOT / "template.yaml")
    props = document["Resources"]["TrainingStateMachine"]["Properties"]
    props["DefinitionSubstitutions"]["SageMakerRoleArn"] = {"Fn::GetAtt": ["SageMakerRole", "Arn"]}
    with pytest.raises(tpl.TemplateError, match="SageMakerRole is not defined"):
        tpl.state_machines(tpl.Resolver(document, STACK, {}, custom_attributes=lambda *a: "s3://x/"), REPO_ROOT)


def test_functions_get_their_environment_with_globals_merged():
    functions = tpl.functions(resolver(), REPO_ROOT)
    gate = functions["QualityGateFunction"]
    assert gate.environment["MODEL_LINE_PREFIX"] == "sagestep-dev-"
    assert gate.environment["POWERTOOLS_SERVICE_NAME"] == "sagestep"
    assert gate.code_dir == (REPO_ROOT / "functions" / "quality_gate").resolve()


def test_unfilled_placeholder_is_an_error():
    with pytest.raises(tpl.TemplateError, match="MissingThing"):
        tpl.substitute('{"Resource": "${MissingThing}"}', {}, "x.asl.json")


JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


def job_prefix(execution_name: str, name_hash: str) -> str:
    """Evaluate the training machine's own 'Prepare run' JSONata as the engine does (variables bound first)."""
    states = json.loads((REPO_ROOT / "statemachines" / "training.asl.json").read_text())["States"]
    expression = states["Prepare run"]["Output"].strip()[2:-2]
    bindings = {
        "input": {"Run": {"NameHash": name_hash}, "Hyperparameters": {}, "Algorithm": "lightgbm"},
        "context": {"Execution": {"Name": execution_name}},
    }
    expression = expression.replace("${ArtifactsBucketName}", "bucket")
    result = jsonata.Jsonata(f"($states := {json.dumps(bindings)}; {expression})").evaluate(None)
    return result["Run"]["JobPrefix"]


@pytest.mark.parametrize(
    "execution_name",
    [
        "0f7c1c8e-3a1b-4f7e-9f3e-6c2a1b0d9e8f",
        "_retrain_after_drift_" + "x" * 58,
        "monthly__retrain--2026_11",
        "___",
    ],
)
def test_job_names_from_any_execution_name_are_valid_and_at_most_63_characters(execution_name):
    prefix = job_prefix(execution_name, "a" * 32)
    for step in ("prep", "train", "eval", "base", "model"):
        name = f"{prefix}-{step}-99"
        assert len(name) <= 63 and JOB_NAME.match(name), name
