"""Check 3, service parameters: every Task's request, evaluated on the sample inputs, against botocore's model.

Parameters are evaluated (substitutions filled with the template's example values, JSONPath and intrinsic
functions on the input each state would get) and validated with `awsmodel.validate`: required, unknown, types,
enums, lengths, ranges, patterns. A field whose value could not be known (a Lambda payload, a value derived from a
fully unknown input) is checked for its name and type only. JSONata states (`QueryLanguage: JSONata`): field names
and required fields of `Arguments` only. A JSONPath that is absent from a known input (Step Functions fails the state
with States.Runtime) is reported too.
"""

from __future__ import annotations

import re
from typing import Any

from sagestep.aws import service_model as awsmodel
from sagestep.aws import service_rules
from sagestep.validate import flows
from sagestep.validate.evaluate import Integration, Visit, boto_service, integration
from sagestep.validate.project import Finding, Machine, Project
from sagestep.validate.values import UnknownMap, describe, is_unknown, whole_marker

CHECK = "parameters"

# On a Choice branch the known input does not take, only errors of shape (not of value) are reported.
_STRUCTURAL = re.compile(r": (required field is missing|unknown field|expected )")

# Optimized integrations take JSON in these fields and serialize it themselves (sns Message, sqs MessageBody, ...).
SERIALIZED_FIELDS = {"Message", "MessageBody", "Input", "Detail", "Payload"}


def call_of(state: dict[str, Any]) -> tuple[str, str, Integration] | None:
    """(botocore service, operation, integration) of a Task that calls an AWS API, else None."""
    if state.get("Type") != "Task":
        return None
    integ = integration(state.get("Resource"))
    if integ.kind not in ("optimized", "aws-sdk"):
        return None
    return boto_service(integ.service), integ.action, integ


def _placeholder(shape: Any) -> Any:
    return {"structure": {}, "list": [], "map": {}, "string": "x", "integer": 1, "long": 1, "float": 1.0,
            "double": 1.0, "boolean": True, "timestamp": "2024-01-01T00:00:00Z", "blob": "x"}.get(shape.type_name, "x")


_COMPATIBLE = {
    "integer": {"integer", "long", "float", "double"}, "long": {"integer", "long", "float", "double"},
    "float": {"float", "double"}, "double": {"float", "double"}, "string": {"string", "blob"},
    "blob": {"blob", "string"}, "timestamp": {"timestamp", "string", "integer", "long", "float", "double"},
    "boolean": {"boolean"},
}


class Prepared:
    def __init__(self) -> None:
        self.unknown_paths: set[str] = set()
        self.partial_paths: set[str] = set()  # objects with unknown extra fields: a missing required one may be there
        self.type_errors: list[str] = []

    def value(self, shape: Any, value: Any, path: str) -> Any:
        where = path or "(parameters)"
        kind = shape.type_name
        marker = whole_marker(value)
        if marker is not None:
            source_kind, _, label = marker
            self.unknown_paths.add(path)
            if source_kind != "any" and kind not in _COMPATIBLE.get(source_kind, {source_kind}):
                self.type_errors.append(f"{where}: expected {kind}, but gets a {source_kind} ({label})")
            return _placeholder(shape)
        if isinstance(value, str) and is_unknown(value):
            self.unknown_paths.add(path)
            if kind not in ("string", "blob", "timestamp"):
                self.type_errors.append(f"{where}: expected {kind}, but gets a string ({describe(value)})")
            return "x"
        if isinstance(value, UnknownMap):
            self.partial_paths.add(path)
        if kind == "structure" and isinstance(value, dict):
            return type(value)({k: self.value(shape.members[k], v, f"{path}.{k}" if path else k) if k in shape.members else v
                                for k, v in value.items()})
        if kind == "list" and isinstance(value, list):
            return [self.value(shape.member, v, f"{path}[{i}]") for i, v in enumerate(value)]
        if kind == "map" and isinstance(value, dict):
            out = {}
            for k, v in value.items():
                if is_unknown(k):
                    self.unknown_paths.add(f"{path}.{k}")
                out[k] = self.value(shape.value, v, f"{path}.{k}")
            return out
        return value

    def keeps(self, error: str) -> bool:
        path = error.split(": ", 1)[0]
        path = "" if path == "(parameters)" else path
        for unknown_path in self.unknown_paths:
            if path == unknown_path or path.startswith(unknown_path + ".") or path.startswith(unknown_path + "[") or not unknown_path:
                return False
        if error.endswith("required field is missing"):
            parent = path.rsplit(".", 1)[0] if "." in path else ""
            if parent in self.partial_paths:
                return False
        return True


def serialize_json_fields(integ: Integration, params: Any) -> Any:
    if integ.kind != "optimized" or not isinstance(params, dict):
        return params
    import json

    out = dict(params)
    for key in SERIALIZED_FIELDS & set(out):
        if isinstance(out[key], (dict, list)):
            out[key] = json.dumps(out[key])
    if isinstance(out.get("Entries"), list):  # events:putEvents Detail
        out["Entries"] = [serialize_json_fields(integ, e) for e in out["Entries"]]
    return out


def validate_request(service: str, action: str, integ: Integration, params: Any) -> list[str]:
    try:
        shape = awsmodel.operation_model(service, action).input_shape
    except Exception as exc:
        return [f"{integ.service}:{integ.action} is not an operation of botocore's {service} model ({exc})"]
    if shape is None:
        return []
    if whole_marker(params) is not None:
        return []  # the whole request is unknown (no Parameters and an unknown input)
    params = serialize_json_fields(integ, params)
    params = api_casing(service, shape, params)
    prepared = Prepared()
    request = prepared.value(shape, params, "")
    errors = awsmodel.validate(service, action, request) + service_rules.check(service, action, request)
    return prepared.type_errors + [e for e in errors if prepared.keeps(e)]


def api_casing(service: str, shape: Any, params: Any) -> Any:
    """Step Functions takes PascalCase (StateMachineArn, Input, Name) for the camelCase members of its own API, in the
    optimized and the aws-sdk integration alike."""
    if service != "stepfunctions" or not isinstance(params, dict) or shape is None:
        return params
    by_lower = {name.lower(): name for name in shape.members}
    return {by_lower.get(key.removesuffix(".$").lower(), key.removesuffix(".$")) + (".$" if key.endswith(".$") else ""): value
            for key, value in params.items()}


def check_names_only(shape: Any, value: Any, path: str, errors: list[str]) -> None:
    """JSONata Arguments: the field names (and required fields) only; values are expressions."""
    if shape is None:
        return
    if shape.type_name == "structure" and isinstance(value, dict):
        for name in shape.required_members:
            if name not in value:
                errors.append(f"{path + '.' if path else ''}{name}: required field is missing")
        for key, item in value.items():
            if key not in shape.members:
                errors.append(f"{path + '.' if path else ''}{key}: unknown field; valid fields are {', '.join(sorted(shape.members))}")
            else:
                check_names_only(shape.members[key], item, f"{path}.{key}" if path else key, errors)
    elif shape.type_name == "list" and isinstance(value, list):
        for index, item in enumerate(value):
            check_names_only(shape.member, item, f"{path}[{index}]", errors)


def state_location(machine: Machine, path: tuple[str, ...]) -> str:
    return f'{machine.logical_id}, state "{" > ".join(path)}"'


def check_machine(machine: Machine) -> list[Finding]:
    found: dict[tuple[str, str], list[str]] = {}

    def add(path: tuple[str, ...], message: str, sample: str | None) -> None:
        found.setdefault((state_location(machine, path), message), []).append(sample or "")

    for walk in flows.example_walks(machine):
        for problem in walk.walker.problems:
            if problem.kind == "missing" and walk.sample is not None:
                add(problem.path, f"JSONPath not found: {problem.message}", walk.sample)
        for visit in walk.walker.visits:
            call = call_of(visit.state)
            if call is None:
                continue
            service, action, integ = call
            label = f"{integ.service}:{integ.action}"
            if visit.language == "JSONata":
                errors: list[str] = []
                try:
                    shape = awsmodel.operation_model(service, action).input_shape
                except Exception as exc:
                    errors = [f"not an operation of botocore's {service} model ({exc})"]
                    shape = None
                arguments = api_casing(service, shape, visit.state.get("Arguments"))
                if isinstance(arguments, dict):
                    check_names_only(shape, arguments, "", errors)
                for error in errors:
                    add(visit.path, f"{label}: {error}", None)
                continue
            params = visit.params if visit.has_params else visit.input
            for error in validate_request(service, action, integ, params):
                if visit.certain or _STRUCTURAL.search(error):
                    add(visit.path, f"{label}: {error}", walk.sample)
    findings = []
    for (location, message), samples in found.items():
        named = sorted({s for s in samples if s})
        suffix = f" (with the input of {named[0]})" if named else ""
        findings.append(Finding(CHECK, machine.file, location, message + suffix))
    return findings


def check(project: Project) -> list[Finding]:
    findings: list[Finding] = []
    for machine in project.machines:
        findings += check_machine(machine)
    return findings


def visits_of(machine: Machine) -> list[Visit]:
    return [v for w in flows.example_walks(machine) for v in w.walker.visits]
