"""Validate request parameters against botocore's service models, offline.

botocore's own ParamValidator checks required members, unknown members, types and minimums; AWS also rejects
enum values that do not exist, strings over their maximum length and strings that break the member's pattern.
This module checks all of those, so a state machine Task that AWS would reject is rejected locally and by
`sagestep validate`, with the path of the offending field.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Any

import botocore.session
from botocore.model import OperationModel, Shape

# Step Functions service integration names that differ from the botocore service name.
SFN_TO_BOTO_SERVICE = {"states": "stepfunctions", "sfn": "stepfunctions"}


@functools.lru_cache(maxsize=None)
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


@functools.lru_cache(maxsize=None)
def operation_model(service: str, action: str) -> OperationModel:
    """`action` may be camelCase as in ASL (createTrainingJob) or PascalCase (CreateTrainingJob)."""
    service = SFN_TO_BOTO_SERVICE.get(service, service)
    model = _session().get_service_model(service)
    name = action[0].upper() + action[1:]
    if name not in model.operation_names:
        # aws-sdk integrations spell a few operations differently (e.g. lower-case acronyms); match loosely.
        by_lower = {op.lower(): op for op in model.operation_names}
        if name.lower() not in by_lower:
            raise UnknownOperation(f"{service} has no operation {action!r}")
        name = by_lower[name.lower()]
    return model.operation_model(name)


class UnknownOperation(ValueError):
    pass


# Java's Unicode classes, which Python's re lacks, as close Python equivalents (inside a character class): a letter
# or digit is a word character, a separator a space-like one. E.g. CustomerMetadataProperties' values.
_JAVA_CLASSES = {r"\p{L}": r"\w", r"\p{N}": r"\w", r"\p{Z}": " \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"}
# Java reads `...)${1,256}` as the end anchor under a (redundant) quantifier; Python refuses to repeat `$`.
_JAVA_ANCHOR_QUANTIFIER = re.compile(r"\$\{\d+(,\d*)?\}$")


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    for java, python in _JAVA_CLASSES.items():
        pattern = pattern.replace(java, python)
    pattern = _JAVA_ANCHOR_QUANTIFIER.sub("$", pattern)
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error:
        return None  # a Java-only regex construct; AWS checks it, we cannot


def validate(service: str, action: str, params: Any) -> list[str]:
    """Return every violation as 'Field.Path: problem'; an empty list means AWS would accept the shape."""
    shape = operation_model(service, action).input_shape
    errors: list[str] = []
    if shape is None:
        if params:
            errors.append(f"{action} takes no parameters")
        return errors
    _check(shape, params, "", errors)
    return errors


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _check(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    kind = shape.type_name
    where = path or "(parameters)"
    if kind == "structure":
        if not isinstance(value, dict):
            errors.append(f"{where}: expected an object, got {type(value).__name__}")
            return
        for name in shape.required_members:
            if name not in value:
                errors.append(f"{_join(path, name)}: required field is missing")
        for name, member_value in value.items():
            if name not in shape.members:
                errors.append(
                    f"{_join(path, name)}: unknown field; valid fields are {', '.join(sorted(shape.members))}"
                )
                continue
            _check(shape.members[name], member_value, _join(path, name), errors)
    elif kind == "list":
        if not isinstance(value, list):
            errors.append(f"{where}: expected a list, got {type(value).__name__}")
            return
        _check_length(shape, len(value), where, errors, "items")
        for index, item in enumerate(value):
            _check(shape.member, item, f"{path}[{index}]", errors)
    elif kind == "map":
        if not isinstance(value, dict):
            errors.append(f"{where}: expected an object (map), got {type(value).__name__}")
            return
        _check_length(shape, len(value), where, errors, "entries")
        for key, item in value.items():
            _check(shape.key, key, f"{path}.{key}(key)", errors)
            _check(shape.value, item, f"{path}.{key}", errors)
    elif kind == "string":
        if not isinstance(value, str):
            errors.append(f"{where}: expected a string, got {type(value).__name__} {value!r}")
            return
        if shape.enum and value not in shape.enum:
            errors.append(f"{where}: {value!r} is not one of {', '.join(shape.enum)}")
        _check_length(shape, len(value), where, errors, "characters")
        pattern = shape.metadata.get("pattern")
        compiled = _compiled(pattern) if pattern else None
        if compiled is not None and not compiled.fullmatch(value):
            errors.append(f"{where}: {value!r} does not match the pattern {pattern}")
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"{where}: expected an integer, got {type(value).__name__} {value!r}")
            return
        _check_range(shape, value, where, errors)
    elif kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append(f"{where}: expected a number, got {type(value).__name__} {value!r}")
            return
        _check_range(shape, value, where, errors)
    elif kind == "boolean":
        if not isinstance(value, bool):
            errors.append(f"{where}: expected true or false, got {type(value).__name__} {value!r}")
    elif kind == "timestamp":
        if not isinstance(value, (str, int, float, dt.datetime)):
            errors.append(f"{where}: expected a timestamp, got {type(value).__name__}")
    elif kind == "blob":
        if not isinstance(value, (str, bytes, bytearray)):
            errors.append(f"{where}: expected a string or bytes, got {type(value).__name__}")


def _check_length(shape: Shape, length: int, where: str, errors: list[str], unit: str) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and length < low:
        errors.append(f"{where}: has {length} {unit}, at least {low} required")
    if high is not None and length > high:
        errors.append(f"{where}: has {length} {unit}, at most {high} allowed")


def _check_range(shape: Shape, value: float, where: str, errors: list[str]) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and value < low:
        errors.append(f"{where}: {value} is below the minimum {low}")
    if high is not None and value > high:
        errors.append(f"{where}: {value} is above the maximum {high}")
