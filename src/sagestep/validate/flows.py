"""The walks the parameter, IAM and naming checks share, run once per state machine version and cached.

- *example* walks: each sample input of the machine in events/ (or, without one, a fully unknown input), an
  execution named like Step Functions' default (a UUID), RetryCount 0;
- *probe* walks, for lengths and patterns: every string of the execution input replaced by a long one (two
  lengths, so a name that grows with the input is seen growing), execution names at the 80-character limit and
  full of the characters Step Functions allows but job names do not, RetryCount at two digits.
"""

from __future__ import annotations

import collections
import dataclasses
import json
from collections.abc import Callable
from typing import Any

from sagestep.validate.evaluate import Walker, WalkSettings
from sagestep.validate.project import Machine
from sagestep.validate.values import unknown

EXAMPLE_EXECUTION_NAME = "3f2b8c1e-7d4a-4e9b-a1c2-5d6e7f8a9b0c"
# Step Functions execution names: 1-80 characters; no spaces, brackets, wildcards or " # % \ ^ | ~ ` $ & , ; : /
PROBE_EXECUTION_NAMES = ("a" * 80, ("_Run.2024-" * 8)[:80], "_" * 80)
PROBE_LENGTHS = (300, 600)
PROBE_RETRY_COUNT = 99


@dataclasses.dataclass
class Walk:
    sample: str | None  # the events/ file, None for an unknown input
    walker: Walker
    execution_name: str = ""
    input_length: int = 0


def _settings(machine: Machine, execution_name: str, retry_count: int) -> WalkSettings:
    return WalkSettings(execution_name=execution_name, state_machine_name=machine.name,
                        state_machine_arn=machine.arn, role_arn=machine.role_arn, retry_count=retry_count)


def _inputs(machine: Machine) -> list[tuple[str | None, Any]]:
    return list(machine.samples) or [(None, unknown("any", "execution input"))]


def _example(machine: Machine) -> list[Walk]:
    walks = []
    for sample, data in _inputs(machine):
        walker = Walker(_settings(machine, EXAMPLE_EXECUTION_NAME, 0))
        walker.run(machine.definition or {}, data)
        walks.append(Walk(sample, walker, EXAMPLE_EXECUTION_NAME))
    return walks


def example_walks(machine: Machine) -> list[Walk]:
    return _walks(machine, "example", _example)


def _lengthen(value: Any, length: int) -> Any:
    if isinstance(value, str):
        return "x" * length if not value.startswith("\ue000") else unknown("any", "execution input")
    if isinstance(value, dict):
        return {k: _lengthen(v, length) for k, v in value.items()}
    if isinstance(value, list):
        return [_lengthen(v, length) for v in value]
    return value


def behind_the_door(definition: dict[str, Any]) -> dict[str, Any]:
    """The definition started behind its input check (a first Pass assigning InputProblems, then a Choice whose
    Default goes on): a probe's long strings would be refused there, yet what the states behind it build from an
    input must stay within AWS's limits whatever the check lets through."""
    states = definition.get("States") or {}
    door = states.get(definition.get("StartAt"))
    if not isinstance(door, dict) or "InputProblems" not in (door.get("Assign") or {}):
        return definition
    choice = states.get(door.get("Next"))
    if not isinstance(choice, dict) or choice.get("Type") != "Choice" or choice.get("Default") not in states:
        return definition
    return {**definition, "StartAt": choice["Default"]}


def _probes(machine: Machine) -> list[Walk]:
    walks = []
    for sample, data in _inputs(machine):
        for name in PROBE_EXECUTION_NAMES:
            for length in PROBE_LENGTHS:
                walker = Walker(_settings(machine, name, PROBE_RETRY_COUNT))
                walker.run(behind_the_door(machine.definition or {}), _lengthen(data, length))
                walks.append(Walk(sample, walker, name, length))
    return walks


def probe_walks(machine: Machine) -> list[Walk]:
    return _walks(machine, "probe", _probes)


# Walks of machines already walked in this process, by everything a walk depends on: a process that validates
# several versions of a project (an editor's checker, the test suite) walks an unchanged machine once. The checks
# only read walks.
_WALKED: collections.OrderedDict[tuple[str, ...], list[Walk]] = collections.OrderedDict()
_WALKED_KEEP = 128


def _walks(machine: Machine, kind: str, walk: Callable[[Machine], list[Walk]]) -> list[Walk]:
    if machine.definition is None:
        return []
    key = (kind, machine.name, machine.arn, machine.role_arn, json.dumps(machine.definition, sort_keys=True, default=repr),
           json.dumps(machine.samples, sort_keys=True, default=repr))
    walks = _WALKED.get(key)
    if walks is None:
        walks = _WALKED[key] = walk(machine)
        while len(_WALKED) > _WALKED_KEEP:
            _WALKED.popitem(last=False)
    return walks
