"""Check 6, errors and Step Functions limits: what Retry and Catch name, and how long they retry.

- Every `ErrorEquals` name must be one the state can fail with (`aws.error_names`): a name of its integration
  (`SageMaker.AmazonSageMakerException` for an optimized SageMaker task, `SageMaker.SageMakerException` and the
  modeled exceptions for `aws-sdk:sagemaker:*`, `Lambda.*` and the function's exception classes for Lambda, ...),
  a `States.*` name that applies to the state, or the `Error` of a Fail state inside a Parallel or Map. A name that
  cannot occur (`ThrottlingException` with no prefix, `SageMaker.ThrottlingException`, the optimized name on an
  aws-sdk task) never matches: its Retry or Catch silently does nothing in AWS.
- `States.Runtime` is never retried nor caught.
- A Retry that matches permanent errors (the generic service names, which carry ValidationException, and the
  wildcards States.ALL / States.TaskFailed) may not wait more than `PERMANENT_RETRY_BUDGET_SECONDS` in total: a bad
  request would otherwise be retried for minutes. UpdateEndpoint, UpdateEndpointWeightsAndCapacities and
  DeleteEndpoint are exempt: SageMaker answers ValidationException ("Cannot update in-progress endpoint") while an
  endpoint is Creating/Updating, which clears by itself.
- `HeartbeatSeconds` below `TimeoutSeconds`; Map `MaxConcurrency` within what AWS runs (Inline 40, Distributed 10,000);
  the request-level cross-field rules of `aws.service_rules` are applied by the `parameters` check.
"""

from __future__ import annotations

import ast
import builtins
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sagestep.aws import error_names
from sagestep.validate.project import Finding, Machine, Project

CHECK = "errors"
PERMANENT_RETRY_BUDGET_SECONDS = 60
INLINE_MAP_CONCURRENCY = 40
DISTRIBUTED_MAP_CONCURRENCY = 10_000
_WILDCARDS = {"States.ALL", "States.TaskFailed"}
_STATES_NEVER_CAUGHT = {"States.Runtime"}
_TRANSIENT_CONFLICT_ACTIONS = {"updateendpoint", "updateendpointweightsandcapacities", "deleteendpoint"}


def _location(machine: Machine, path: tuple[str, ...]) -> str:
    return f'{machine.logical_id}, state "{" > ".join(path)}"'


@functools.lru_cache(maxsize=None)
def _exception_classes(root: Path) -> frozenset[str]:
    """Exception class names a Lambda handler can raise: Python's built-ins and every class defined in the
    project's functions/ and runtime packages (an errorType is the class name)."""
    names = {n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)}
    from sagestep.aws.codebundle import RUNTIME_PACKAGES

    dirs = [root / "functions"] + [root / "src" / "sagestep" / p for p in RUNTIME_PACKAGES]
    for directory in dirs:
        for path in directory.rglob("*.py") if directory.is_dir() else []:
            try:
                tree = ast.parse(path.read_text())
            except (SyntaxError, UnicodeDecodeError):
                continue
            names |= {node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
    return frozenset(names)


def _states_names(state: dict[str, Any]) -> set[str]:
    names = set(error_names.TASK_STATES_ERRORS)
    if "HeartbeatSeconds" in state or "HeartbeatSecondsPath" in state:
        names.add("States.HeartbeatTimeout")
    if state.get("Type") == "Parallel":
        names.add("States.BranchFailed")
    if state.get("Type") == "Map":
        names |= {"States.ExceedToleratedFailureThreshold", "States.ItemReaderFailed", "States.ResultWriterFailed"}
    names.add("States.QueryEvaluationError")
    return names


def raisable(state: dict[str, Any], root: Path) -> tuple[set[str] | None, bool]:
    """(names the state can fail with or None when unknown, whether custom exception-class names are possible)."""
    kind = state.get("Type")
    if kind == "Task":
        names = _states_names(state)
        integration = error_names.integration_of(state.get("Resource"))
        if integration is None:  # a bare function ARN: a Lambda
            return names | (error_names.service_names("optimized", "lambda") or set()), True
        sdk, service, _action, _pattern = integration
        service_names = error_names.service_names(sdk, service)
        if service_names is None:
            return None, False
        return names | service_names, service == "lambda" and sdk == "optimized"
    if kind in ("Parallel", "Map"):
        names = _states_names(state)
        custom = False
        for inner in _inner_states(state):
            inner_names, inner_custom = raisable(inner, root)
            if inner_names is None:
                return None, False
            names |= inner_names
            custom = custom or inner_custom
            if inner.get("Type") == "Fail" and isinstance(inner.get("Error"), str):
                names.add(inner["Error"])
        return names, custom
    return set(), False


def _inner_states(state: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for branch in state.get("Branches") or []:
        for inner in (branch.get("States") or {}).values():
            yield inner
    processor = state.get("ItemProcessor") or state.get("Iterator")
    if processor:
        for inner in (processor.get("States") or {}).values():
            yield inner


def _walk(states: dict[str, Any], prefix: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    for name, state in states.items():
        if not isinstance(state, dict):
            continue
        path = prefix + (name,)
        yield path, state
        for branch in state.get("Branches") or []:
            yield from _walk(branch.get("States") or {}, path)
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from _walk(processor.get("States") or {}, path)


def total_retry_seconds(retrier: dict[str, Any]) -> float:
    interval = float(retrier.get("IntervalSeconds", 1))
    rate = float(retrier.get("BackoffRate", 2.0))
    cap = retrier.get("MaxDelaySeconds")
    total = 0.0
    for attempt in range(int(retrier.get("MaxAttempts", 3))):
        delay = interval * rate ** attempt
        total += min(delay, float(cap)) if cap is not None else delay
    return total


def _generic(name: str) -> bool:
    if name in _WILDCARDS:
        return True
    prefix, _, rest = name.partition(".")
    return rest in (f"{prefix}Exception", f"Amazon{prefix}Exception", f"AWS{prefix}Exception") or \
        name in {generic for _, generic in error_names.OPTIMIZED.values()}


def check_state(machine: Machine, path: tuple[str, ...], state: dict[str, Any], root: Path) -> list[Finding]:
    findings: list[Finding] = []
    where = _location(machine, path)
    names, custom = raisable(state, root)
    classes = _exception_classes(root) if custom else frozenset()
    integration = error_names.integration_of(state.get("Resource"))
    for field in ("Retry", "Catch"):
        for index, entry in enumerate(state.get(field) or []):
            equals = entry.get("ErrorEquals") or []
            for name in equals:
                if name in _STATES_NEVER_CAUGHT:
                    findings.append(Finding(CHECK, machine.file, where, f"{field}[{index}]: {name} is never retried or caught"))
                elif names is not None and name not in names and not (custom and "." not in name and name in classes):
                    findings.append(Finding(CHECK, machine.file, where, f"{field}[{index}]: {name!r} can never occur here, so it "
                                            f"never matches; {_hint(state, name)}"))
            if field == "Retry" and any(_generic(n) for n in equals):
                action = (integration[2] if integration else "").lower()
                seconds = total_retry_seconds(entry)
                if seconds > PERMANENT_RETRY_BUDGET_SECONDS and action not in _TRANSIENT_CONFLICT_ACTIONS:
                    findings.append(Finding(CHECK, machine.file, where, (
                        f"Retry[{index}] on {', '.join(n for n in equals if _generic(n))} waits up to {seconds:.0f} s: that name "
                        f"also carries permanent errors (ValidationException), which would be retried for minutes; retry it "
                        f"for at most {PERMANENT_RETRY_BUDGET_SECONDS} s and name the transient errors (e.g. "
                        f"SageMaker.ResourceLimitExceededException) in a Retry of their own")))
    timeout, heartbeat = state.get("TimeoutSeconds"), state.get("HeartbeatSeconds")
    if isinstance(timeout, int) and isinstance(heartbeat, int) and heartbeat >= timeout:
        findings.append(Finding(CHECK, machine.file, where, f"HeartbeatSeconds {heartbeat} must be smaller than TimeoutSeconds {timeout}"))
    if state.get("Type") == "Map" and isinstance(state.get("MaxConcurrency"), int):
        processor = state.get("ItemProcessor") or {}
        distributed = (processor.get("ProcessorConfig") or {}).get("Mode") == "DISTRIBUTED"
        limit = DISTRIBUTED_MAP_CONCURRENCY if distributed else INLINE_MAP_CONCURRENCY
        if state["MaxConcurrency"] > limit:
            findings.append(Finding(CHECK, machine.file, where, (
                f"MaxConcurrency {state['MaxConcurrency']}: a{' Distributed' if distributed else 'n Inline'} Map runs at most "
                f"{limit} iterations at once{'' if distributed else '; use a Distributed Map for more'}")))
    return findings


def _hint(state: dict[str, Any], name: str) -> str:
    integration = error_names.integration_of(state.get("Resource"))
    if integration is None:
        return "check the name against the Step Functions error names"
    kind, service, _action, _pattern = integration
    if kind == "aws-sdk":
        prefix = error_names.sdk_prefix(service)
        return f"aws-sdk:{service} tasks fail with {prefix}.<ModeledError>Exception or {prefix}.{prefix}Exception"
    if service in error_names.OPTIMIZED:
        prefix, generic = error_names.OPTIMIZED[service]
        extra = " or the function's exception class names" if service == "lambda" else ""
        return f"{service} tasks fail with {prefix}.<ModeledError>Exception or {generic}{extra}"
    return "check the name against the Step Functions error names"


def check_machine(machine: Machine, root: Path) -> list[Finding]:
    if machine.definition is None:
        return []
    findings: list[Finding] = []
    for path, state in _walk(machine.definition.get("States") or {}, ()):
        findings += check_state(machine, path, state, root)
    return findings


def check(project: Project) -> list[Finding]:
    findings: list[Finding] = []
    for machine in project.machines:
        findings += check_machine(machine, project.root)
    return findings

