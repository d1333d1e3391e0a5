"""Structural contracts of every state machine in template.yaml, checked without AWS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sagestep import awsmodel
from sagestep import template as tpl
from tests.conftest import REPO_ROOT

TEMPLATE = tpl.load_template(REPO_ROOT / "template.yaml")
RAW_MACHINES = {
    logical_id: resource
    for logical_id, resource in TEMPLATE["Resources"].items()
    if resource["Type"] == "AWS::Serverless::StateMachine"
}


def all_states(states: dict) -> dict:
    found = dict(states)
    for state in states.values():
        for branch in state.get("Branches", []):
            found.update(all_states(branch["States"]))
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            found.update(all_states(processor["States"]))
    return found


def transitions(state: dict) -> list[str]:
    targets = [state.get("Next"), state.get("Default")]
    targets += [choice.get("Next") for choice in state.get("Choices", [])]
    targets += [catch.get("Next") for catch in state.get("Catch", [])]
    return [t for t in targets if t]


def reachable(states: dict, start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(transitions(states[name]))
    return seen


@pytest.mark.parametrize("logical_id", sorted(RAW_MACHINES))
def test_every_transition_target_exists_and_every_state_is_reachable(logical_id):
    definition = json.loads((REPO_ROOT / RAW_MACHINES[logical_id]["Properties"]["DefinitionUri"]).read_text())

    def check(scope: dict, start: str) -> None:
        for name, state in scope.items():
            for target in transitions(state):
                assert target in scope, f"{logical_id}: state {name!r} goes to missing state {target!r}"
            for branch in state.get("Branches", []):
                check(branch["States"], branch["StartAt"])
            processor = state.get("ItemProcessor") or state.get("Iterator")
            if processor:
                check(processor["States"], processor["StartAt"])
        assert set(scope) == reachable(scope, start), f"{logical_id}: unreachable {set(scope) - reachable(scope, start)}"

    check(definition["States"], definition["StartAt"])


@pytest.mark.parametrize("logical_id", sorted(RAW_MACHINES))
def test_every_placeholder_has_a_substitution_and_every_substitution_is_used(logical_id):
    props = RAW_MACHINES[logical_id]["Properties"]
    text = (REPO_ROOT / props["DefinitionUri"]).read_text()
    declared = set(props.get("DefinitionSubstitutions", {}))
    used = tpl.placeholders(text)
    assert used - declared == set(), f"placeholders without substitution: {used - declared}"
    assert declared - used == set(), f"substitutions never used: {declared - used}"


def _check_keys(shape, value, path: str, errors: list[str]) -> None:
    """Field names and static values of Parameters against the service model; `X.$` fields are dynamic."""
    if shape.type_name == "structure" and isinstance(value, dict):
        names = {key[:-2] if key.endswith(".$") else key for key in value}
        for required in shape.required_members:
            if required not in names:
                errors.append(f"{path}.{required}: required field is missing")
        for key, item in value.items():
            name = key[:-2] if key.endswith(".$") else key
            if name not in shape.members:
                errors.append(f"{path}.{name}: unknown field")
            elif not key.endswith(".$"):
                _check_keys(shape.members[name], item, f"{path}.{name}", errors)
    elif shape.type_name == "list" and isinstance(value, list):
        for index, item in enumerate(value):
            _check_keys(shape.member, item, f"{path}[{index}]", errors)
    elif shape.type_name == "string" and isinstance(value, str) and shape.enum and "${" not in value:
        if value not in shape.enum:
            errors.append(f"{path}: {value!r} is not one of {shape.enum}")


@pytest.mark.parametrize("logical_id", sorted(RAW_MACHINES))
def test_service_task_parameters_match_the_botocore_model(logical_id):
    definition = json.loads((REPO_ROOT / RAW_MACHINES[logical_id]["Properties"]["DefinitionUri"]).read_text())
    errors: list[str] = []
    for name, state in all_states(definition["States"]).items():
        resource = state.get("Resource", "")
        if state.get("Type") != "Task" or ":::" not in resource:
            continue
        service_action = resource.split(":::", 1)[1].split(".sync")[0]
        parts = service_action.split(":")
        service, action = (parts[1], parts[2]) if parts[0] == "aws-sdk" else (parts[0], parts[1])
        if service in ("lambda",):
            continue
        shape = awsmodel.operation_model(service, action).input_shape
        if service == "sns":
            continue  # Step Functions accepts a JSON object as Message; checked at run time
        _check_keys(shape, state.get("Parameters", state.get("Arguments", {})), name, errors)
    assert errors == []
