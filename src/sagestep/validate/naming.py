"""Check 5, naming and limits.

- Names and tokens built at run time (a field whose botocore shape has a pattern and at most 256 characters:
  TrainingJobName, ModelName, EndpointConfigName, ClientToken, ...) are evaluated in the probe walks (see `flows`):
  execution names of 80 characters made of every character Step Functions allows, RetryCount 99, every input string
  long. A name that grows with the execution input is unbounded; otherwise its longest value and its pattern are
  checked. Unknown parts count at the maximum length of the shape they come from (a Describe* field), or make the
  name unbounded (a Lambda payload). A field that copies an input value unchanged (an ARN the caller passes) is the
  caller's value, not a built name, and is left to the parameter check.
- `.sync` tasks must cut their Describe* output down (ResultSelector, or ResultPath: null): a state's data is
  limited to 256 KB and a training job's description alone can approach it.
- A SageMaker create call that is retried must name the new resource with `$$.State.RetryCount`: a retry with the
  same name fails ("already exists"). This applies to `.sync` creates (retried after the job exists) and to
  request-response creates retried on States.ALL / TaskFailed / Timeout; a request-response create retried on service
  errors only (SageMaker.AmazonSageMakerException, which is also how throttling surfaces) created nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from sagestep.aws import service_model as awsmodel
from sagestep.validate import flows
from sagestep.validate.parameters import call_of, state_location
from sagestep.validate.project import Finding, Machine, Project
from sagestep.validate.values import describe, fill, is_unknown, whole_marker, worst_length

CHECK = "naming"
NAME_MAX_LENGTH = 256
_JSONATA = re.compile(r"^\s*\{%.*%\}\s*$", re.DOTALL)


def _pattern(shape: Any) -> re.Pattern[str] | None:
    pattern = shape.metadata.get("pattern")
    return awsmodel._compiled(pattern) if pattern else None


def is_name_like(shape: Any) -> bool:
    return (shape.type_name == "string" and _pattern(shape) is not None
            and shape.metadata.get("max") is not None and shape.metadata["max"] <= NAME_MAX_LENGTH)


def built_fields(shape: Any, raw: Any, value: Any, path: str, dynamic: str | None) -> Iterator[tuple[str, Any, Any, str]]:
    """(field path, shape, evaluated value, expression) for every name-like field computed at run time."""
    if shape is None:
        return
    if shape.type_name == "structure" and isinstance(value, dict):
        for key, item in value.items():
            if key not in shape.members:
                continue
            expr = dynamic
            sub_raw = None
            if isinstance(raw, dict):
                if f"{key}.$" in raw:
                    expr = raw[f"{key}.$"]
                elif key in raw:
                    sub_raw = raw[key]
                    if isinstance(sub_raw, str) and _JSONATA.match(sub_raw):
                        expr = sub_raw
            yield from built_fields(shape.members[key], sub_raw, item, f"{path}.{key}" if path else key, expr)
    elif shape.type_name == "list" and isinstance(value, list):
        for index, item in enumerate(value):
            sub_raw = raw[index] if isinstance(raw, list) and index < len(raw) else None
            yield from built_fields(shape.member, sub_raw, item, f"{path}[{index}]", dynamic)
    elif dynamic is not None and isinstance(value, str) and is_name_like(shape):
        yield path, shape, value, str(dynamic)


def _raw_request(state: dict[str, Any]) -> Any:
    if "Arguments" in state:
        arguments = state["Arguments"]
        return arguments
    return state.get("Parameters")


def check_built_names(machine: Machine) -> list[Finding]:
    # (state path, field) → per walk: (execution name, input length, value)
    seen: dict[tuple[tuple[str, ...], str], dict[str, Any]] = {}
    for walk in flows.probe_walks(machine):
        for visit in walk.walker.visits:
            call = call_of(visit.state)
            if call is None or not visit.has_params:
                continue
            service, action, _ = call
            try:
                shape = awsmodel.operation_model(service, action).input_shape
            except Exception:
                continue
            raw = _raw_request(visit.state)
            whole = raw if isinstance(raw, str) and _JSONATA.match(raw) else None
            for field, field_shape, value, expr in built_fields(shape, raw, visit.params, "", whole):
                entry = seen.setdefault((visit.path, field), {"shape": field_shape, "expr": expr, "values": []})
                entry["values"].append((walk.execution_name, walk.input_length, value))
    findings = []
    for (path, field), entry in seen.items():
        expr = str(entry["expr"]).strip()
        copied = expr.startswith("$") and not expr.startswith("States.")
        message = _judge(entry["shape"], entry["values"], copied)
        if message:
            findings.append(Finding(CHECK, machine.file, state_location(machine, path),
                                    f"{field} = {entry['expr']}: {message}"))
    return findings


def _judge(shape: Any, values: list[tuple[str, int, str]], copied: bool) -> str | None:
    limit = shape.metadata["max"]
    by_name: dict[str, dict[int, str]] = {}
    for name, length, value in values:
        by_name.setdefault(name, {})[length] = value
    if all(value == "x" * length for _, length, value in values):
        return None  # the caller's value passed through unchanged
    if copied:  # a value the machine did not build (an input, a service result) copied as is: not a built name
        values = [(n, l, v) for n, l, v in values if whole_marker(v) is None]
        if not values:
            return None
    for name, by_length in by_name.items():
        lengths = {worst_length(v)[0] for v in by_length.values()}
        if len(by_length) > 1 and len(lengths) > 1:
            return (f"grows with the execution input: an input value of {min(by_length)} characters already makes it "
                    f"{min(l for l in lengths if l is not None)} characters (limit {limit}); bound it (e.g. $substring / "
                    f"a hash) or build it from bounded values")
    worst = 0
    for name, length, value in values:
        longest, unbounded = worst_length(value)
        if longest is None:
            return (f"its length is not bounded (limit {limit}): it is built from {', '.join(sorted(set(unbounded)))}")
        if longest > limit:
            return (f"can reach {longest} characters (limit {limit}), e.g. with a {len(name)}-character execution "
                    f"name and RetryCount {flows.PROBE_RETRY_COUNT}: {describe(value)!r}")
        worst = max(worst, longest)
    pattern = _pattern(shape)
    for name, length, value in values:
        candidate = fill(value)
        if pattern is not None and not pattern.fullmatch(candidate) and not is_unknown(candidate):
            return (f"can break the pattern {shape.metadata['pattern']}: with the execution name {name!r} it is "
                    f"{describe(value)!r}")
    return None


# ---------------------------------------------------------------------------------------------- .sync and Retry


def all_states(machine: dict[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], dict[str, Any], str]]:
    language = machine.get("QueryLanguage", "JSONPath")
    yield from _states(machine, prefix, language)


def _states(machine: dict[str, Any], prefix: tuple[str, ...], language: str) -> Iterator[tuple[tuple[str, ...], dict[str, Any], str]]:
    for name, state in (machine.get("States") or {}).items():
        if not isinstance(state, dict):
            continue
        path = prefix + (name,)
        state_language = state.get("QueryLanguage", language)
        yield path, state, state_language
        for index, branch in enumerate(state.get("Branches") or []):
            if isinstance(branch, dict):
                yield from _states(branch, path + (f"branch {index + 1}",), branch.get("QueryLanguage", state_language))
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if isinstance(processor, dict):
            yield from _states(processor, path + ("item",), processor.get("QueryLanguage", state_language))


def check_sync_results(machine: Machine) -> list[Finding]:
    findings = []
    for path, state, language in all_states(machine.definition or {}):
        call = call_of(state)
        if call is None or not call[2].pattern.startswith(".sync"):
            continue
        if "ResultSelector" in state or ("ResultPath" in state and state["ResultPath"] is None):
            continue
        if language == "JSONata" and "Output" in state and "$states.result }" not in str(state["Output"]).replace("%}", "}"):
            continue
        findings.append(Finding(CHECK, machine.file, state_location(machine, path),
                                f"{call[2].service}:{call[2].action}{call[2].pattern} keeps the whole Describe* output in the "
                                "state's data (limited to 256 KB): add a ResultSelector with the fields later states use, "
                                "or \"ResultPath\": null"))
    return findings


_RETRY_COUNT = ("$$.State.RetryCount", "$states.context.State.RetryCount")
# Errors a request-response create can raise after the resource exists (a timed-out or unanswered call). Service
# errors (SageMaker.AmazonSageMakerException, throttling included) mean the call was rejected: nothing was created.
_AFTER_CREATION = {"States.ALL", "States.TaskFailed", "States.Timeout", "States.HeartbeatTimeout"}


def check_retried_creates(machine: Machine) -> list[Finding]:
    findings = []
    for path, state, _ in all_states(machine.definition or {}):
        call = call_of(state)
        if call is None or call[0] != "sagemaker" or not call[1].startswith("create"):
            continue
        retriers = [r for r in state.get("Retry") or [] if isinstance(r, dict) and r.get("MaxAttempts", 3) != 0]
        errors = [str(e) for r in retriers for e in r.get("ErrorEquals") or []]
        sync = call[2].pattern.startswith(".sync")
        if not retriers or (not sync and not _AFTER_CREATION & set(errors)):
            continue
        field = call[1][len("create"):] + "Name"
        raw = _raw_request(state)
        if not isinstance(raw, dict):
            continue
        expr = raw.get(f"{field}.$", raw.get(field))
        if expr is None or any(marker in str(expr) for marker in _RETRY_COUNT):
            continue
        why = ("a .sync task is retried after its job was created (a failed job, a failed status check)" if sync
               else f"{', '.join(sorted(_AFTER_CREATION & set(errors)))} can follow a create that succeeded")
        findings.append(Finding(CHECK, machine.file, state_location(machine, path),
                                f"{field} = {expr}: retried on {', '.join(errors)} with the same name, but {why}, and a "
                                f"second create with the same name fails ('already exists'): build the name with "
                                f"$$.State.RetryCount (e.g. States.Format('{{}}-{{}}', <name>, $$.State.RetryCount))"))
    return findings


def check(project: Project) -> list[Finding]:
    findings: list[Finding] = []
    for machine in project.machines:
        if machine.definition is None:
            continue
        findings += check_built_names(machine) + check_sync_results(machine) + check_retried_creates(machine)
    return findings
