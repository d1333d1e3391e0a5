"""Copies of the real template, state machines and functions to mutate, one fault at a time, for `sagestep validate`.

Mutations find their target from the files themselves (the first training-job Task, the role of the first state
machine that calls it, ...), so the tests keep working while state machines and resources are added.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from sagestep.stack import template as tpl
from tests.conftest import REPO_ROOT


def copy_project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(REPO_ROOT / "template.yaml", root / "template.yaml")
    for folder in ("statemachines", "events", "functions"):
        if (REPO_ROOT / folder).is_dir():
            shutil.copytree(REPO_ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "src").symlink_to(REPO_ROOT / "src")  # read only: the functions' imports, scanned for boto3 calls
    return root


def machines(root: Path) -> dict[str, dict[str, Any]]:
    document = tpl.load_template(root / "template.yaml")
    return {lid: r for lid, r in document["Resources"].items() if r.get("Type") == "AWS::Serverless::StateMachine"}


def all_states(scope: dict[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    for name, state in scope.get("States", {}).items():
        yield prefix + (name,), state
        for index, branch in enumerate(state.get("Branches", [])):
            yield from all_states(branch, prefix + (name, f"branch {index + 1}"))
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from all_states(processor, prefix + (name, "item"))


def find_task(root: Path, resource_part: str) -> tuple[str, Path, dict[str, Any], tuple[str, ...], dict[str, Any]]:
    """(machine logical ID, ASL path, definition, state path, state) of the first Task whose Resource contains it (a
    whole action: `...:createModelPackage` is not `...:createModelPackageGroup`)."""
    for logical_id, resource in machines(root).items():
        path = root / resource["Properties"]["DefinitionUri"]
        definition = json.loads(path.read_text())
        for state_path, state in all_states(definition):
            resource_arn = str(state.get("Resource", ""))
            if state.get("Type") == "Task" and resource_part in resource_arn and \
                    not resource_arn.partition(resource_part)[2][:1].isalpha():
                return logical_id, path, definition, state_path, state
    raise AssertionError(f"no Task calls {resource_part}")


def write_json(path: Path, document: Any) -> None:
    path.write_text(json.dumps(document, indent=2))


def compose(root: Path) -> yaml.Node:
    return yaml.compose((root / "template.yaml").read_text(), Loader=tpl._CfnLoader)  # noqa: S506


def node_at(node: yaml.Node, keys: list[Any]) -> yaml.Node:
    for key in keys:
        if isinstance(node, yaml.MappingNode):
            node = next(v for k, v in node.value if k.value == key)
        else:
            node = node.value[key]
    return node


def role_statements(root: Path, machine_id: str) -> list[yaml.MappingNode]:
    """The policy statements (YAML nodes) of the AWS::IAM::Role a state machine's `Role: !GetAtt X.Arn` names."""
    document = tpl.load_template(root / "template.yaml")
    role = document["Resources"][machine_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    tree = compose(root)
    statements = []
    for policy in node_at(tree, ["Resources", role, "Properties", "Policies"]).value:
        statements += node_at(policy, ["PolicyDocument", "Statement"]).value
    return statements


def remove_lines(root: Path, first: int, end: int) -> None:
    """Delete 0-based lines [first, end) of template.yaml."""
    lines = (root / "template.yaml").read_text().splitlines(keepends=True)
    (root / "template.yaml").write_text("".join(lines[:first] + lines[end:]))


def remove_action(root: Path, machine_id: str, action: str) -> None:
    """Take one action out of the state machine role's statements (the whole statement if it was the only one)."""
    for statement in role_statements(root, machine_id):
        actions = node_at(statement, ["Action"])
        scalars = [actions] if isinstance(actions, yaml.ScalarNode) else actions.value
        for scalar in scalars:
            if scalar.value != action:
                continue
            if len(scalars) == 1:
                remove_lines(root, statement.start_mark.line, statement.end_mark.line)
                return
            lines = (root / "template.yaml").read_text().splitlines(keepends=True)
            line = lines[scalar.start_mark.line]
            if actions.flow_style:
                edited = line.replace(f"{action}, ", "", 1) if f"{action}, " in line else line.replace(f", {action}", "", 1)
                lines[scalar.start_mark.line] = edited
            else:
                del lines[scalar.start_mark.line]
            (root / "template.yaml").write_text("".join(lines))
            return
    raise AssertionError(f"{machine_id}'s role does not grant {action}")
