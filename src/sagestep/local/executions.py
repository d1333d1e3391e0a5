"""Step Functions executions on disk: recorded when they start and when they end, restored on the next start.

A record is `{"execution": DescribeExecution (input/output parsed), "history": GetExecutionHistory events}` with ISO
timestamps — the same document `sagestep local history` prints and the report reads. A restored execution answers
DescribeExecution, ListExecutions and GetExecutionHistory as it did, and its name stays taken (a StartExecution
with that name is refused with ExecutionAlreadyExists, as in AWS).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from sagestep.local.engine import _attr, _module
from sagestep.local.records import failure_from_history, iso as _iso, json_safe as _json_safe, maybe_json as _maybe_json

_P = "moto.stepfunctions.parser"


def execution_record(execution: Any) -> dict[str, Any]:
    """The record of a live (moto) or restored execution."""
    if isinstance(execution, StoredExecution):
        return execution.record
    describe = dict(execution.to_describe_output())
    try:
        history = list(execution.to_history_output().get("events", []))
    except AttributeError:  # not started yet: no worker, no history
        history = []
    status = describe["status"]
    status = status.value if hasattr(status, "value") else str(status)
    record = {
        "execution": {
            "executionArn": describe["executionArn"],
            "name": describe["name"],
            "stateMachineArn": describe["stateMachineArn"],
            "status": status,
            "input": _maybe_json(describe.get("input")),
            "output": _maybe_json(describe.get("output")),
            "error": describe.get("error"),
            "cause": describe.get("cause"),
            "startDate": _iso(describe.get("startDate")),
            "stopDate": _iso(describe.get("stopDate")),
        },
        "history": _json_safe(history),
    }
    if record["execution"]["error"] is None and status not in ("SUCCEEDED", "RUNNING"):
        record["execution"]["error"], record["execution"]["cause"] = failure_from_history(record["history"])
    return record


def _parse_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (dt.datetime.fromisoformat(v) if k == "timestamp" and isinstance(v, str) else _parse_times(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_parse_times(v) for v in value]
    return value


def _execution_class() -> Any:
    return _attr(_module(f"{_P}.backend.execution"), "Execution")


class StoredExecution(_execution_class()):  # type: ignore[misc]
    """A finished execution of an earlier session, answering the Step Functions API from its record."""

    def __init__(self, record: dict[str, Any], state_machine: Any) -> None:  # noqa: D107 - no super(): nothing runs
        api = _module(f"{_P}.api")
        execution = record["execution"]
        self.record = record
        self.name = execution["name"]
        self.exec_arn = self.execution_arn = execution["executionArn"]
        self.state_machine = state_machine
        self.state_machine_arn = state_machine.arn
        self.sm_type = state_machine.sm_type
        self.role_arn = state_machine.roleArn
        _, _, _, self.region_name, self.account_id, *_ = state_machine.arn.split(":")
        self.input_data = execution.get("input") if execution.get("input") is not None else {}
        self.execution_input = json.dumps(self.input_data)
        self.input_details = api.CloudWatchEventsExecutionDataDetails(included=True)
        self.output_details = api.CloudWatchEventsExecutionDataDetails(included=True)
        self.output = execution.get("output")
        self.trace_header = None
        self.exec_status = api.ExecutionStatus(execution["status"])
        self.start_date = dt.datetime.fromisoformat(execution["startDate"])
        self.stop_date = dt.datetime.fromisoformat(execution["stopDate"]) if execution.get("stopDate") else None
        self.error, self.cause = execution.get("error"), execution.get("cause")
        self.exec_worker = None
        self._activity_store = {}
        self._cloud_watch_logging_session = None

    def to_history_output(self) -> Any:
        return {"events": _parse_times(self.record["history"])}

    def start(self) -> None:
        raise RuntimeError(f"{self.exec_arn} ended in an earlier session; it cannot start again")

    def stop(self, stop_date: Any, error: Any, cause: Any) -> None:
        return None  # a finished execution cannot be stopped (AWS: nothing happens)


def restore_execution(record: dict[str, Any], state_machine: Any) -> StoredExecution:
    return StoredExecution(record, state_machine)


_INSTALLED = False


def install_recording(on_change: Callable[[Any], None]) -> None:
    """Tell `on_change` when an execution starts, ends or is stopped (the cloud writes its record then)."""
    global _INSTALLED
    if _INSTALLED:
        return
    execution_mod = _module(f"{_P}.backend.execution")
    execution_cls = _attr(execution_mod, "Execution")
    comm_cls = _attr(execution_mod, "BaseExecutionWorkerCommunication")
    original_start = _attr(execution_cls, "start")
    original_terminated = _attr(comm_cls, "terminated")
    original_stop = _attr(execution_cls, "stop")

    def start(self: Any) -> None:
        original_start(self)
        on_change(self)

    def terminated(self: Any) -> None:
        original_terminated(self)
        on_change(self.execution)

    def stop(self: Any, stop_date: Any, error: Any, cause: Any) -> None:
        original_stop(self, stop_date, error, cause)
        on_change(self)

    execution_cls.start = start
    comm_cls.terminated = terminated
    execution_cls.stop = stop
    _INSTALLED = True
