"""Audit records: one JSON document per decision of the model life cycle, written once, never overwritten.

A record follows `audit-record.schema.json` (version 1.0, documented in README "Audit trail"). Its key is
`audit/v1/<kind>/<record id>.json`; the record id is derived from what produced it (the
EventBridge event id, or the execution and the decision), so a repeated delivery of one decision finds its key taken
and writes nothing (`If-None-Match: *`), while a new decision — a second approval of the same package — is a new
event and a new record. The bucket's Object Lock (COMPLIANCE) keeps every version for the retention period.

Who writes which kind (the component that makes the decision, or the event AWS emits about it):
- `gate_decision`: the quality gate function; `ab_decision`: the A/B decision function on a final look;
  `monitoring_violations`: the monitoring report function when a check found violations;
- `approval`, `rejection`: the audit recorder function on "SageMaker Model Package State Change";
- `deployment_started`/`_succeeded`/`_failed`, `training_started`: the audit recorder function on "Step Functions
  Execution Status Change" of the deployment and training state machines.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SCHEMA_VERSION = "1.0"
BUCKET_ENV = "AUDIT_BUCKET_NAME"
KEY_PREFIX = "audit/v1"
SCHEMA_PATH = Path(__file__).with_name("audit-record.schema.json")
KINDS = ("gate_decision", "approval", "rejection", "deployment_started", "deployment_succeeded", "deployment_failed",
         "ab_decision", "monitoring_violations", "training_started")
_EXECUTION_KINDS = {  # (state machine name suffix, status) -> kind; other statuses of these machines are not decisions
    ("-deployment", "RUNNING"): "deployment_started",
    ("-deployment", "SUCCEEDED"): "deployment_succeeded",
    ("-deployment", "FAILED"): "deployment_failed",
    ("-deployment", "TIMED_OUT"): "deployment_failed",
    ("-deployment", "ABORTED"): "deployment_failed",
    ("-training", "RUNNING"): "training_started",
}


class AuditError(ValueError):
    """A record that does not follow the schema, or an event the recorder cannot read."""


def record_id(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def _iso(when: dt.datetime | str) -> str:
    if isinstance(when, str):
        return when
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_record(kind: str, *, time: dt.datetime | str, actor: tuple[str, str], subject: dict[str, str], decision: str,
                reasons: list[str], evidence: dict[str, Any], source: tuple[str, str]) -> dict[str, Any]:
    if kind not in KINDS:
        raise AuditError(f"audit record kind {kind!r} is not one of {', '.join(KINDS)}")
    record = {
        "schema_version": SCHEMA_VERSION,
        "record_id": record_id(kind, *source, decision),
        "kind": kind,
        "time": _iso(time),
        "actor": {"type": actor[0], "name": actor[1] or "unknown"},
        "subject": {k: str(v) for k, v in subject.items() if v},
        "decision": str(decision),
        "reasons": [str(r) for r in reasons],
        "evidence": json.loads(json.dumps(evidence, default=str)),
        "source": {"type": source[0], "id": source[1]},
    }
    return record


def record_key(record: dict[str, Any]) -> str:
    """Only the record id after the kind: a retried decision, written seconds (or a midnight) later, finds its key."""
    return f"{KEY_PREFIX}/{record['kind']}/{record['record_id']}.json"


def write(s3: Any, bucket: str, record: dict[str, Any]) -> str | None:
    """Write `record` once; returns its key, or None when that decision was recorded already (same record id)."""
    key = record_key(record)
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(record, indent=2, sort_keys=True).encode(),
                      ContentType="application/json", IfNoneMatch="*")
    except s3.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
            return None
        raise
    return key


def read(s3: Any, bucket: str, kind: str | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """(key, record) of every record in the bucket, or of one kind."""
    prefix = f"{KEY_PREFIX}/{kind}/" if kind else f"{KEY_PREFIX}/"
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield item["Key"], json.loads(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())


# ------------------------------------------------------------------------------------------------ from events


def _metadata(detail: dict[str, Any]) -> dict[str, str]:
    return dict(detail.get("CustomerMetadataProperties") or {})


def from_package_event(event: dict[str, Any]) -> dict[str, Any] | None:
    """An approval or a rejection from "SageMaker Model Package State Change" (None for other changes: registration
    pending approval, metadata updates such as a recorded deployment)."""
    detail = event.get("detail") or {}
    status = detail.get("ModelApprovalStatus")
    updated = detail.get("UpdatedModelPackageFields")
    if status not in ("Approved", "Rejected") or (updated is not None and "ModelApprovalStatus" not in updated
                                                  and "ApprovalDescription" not in updated):
        return None
    prefix = "Approved" if status == "Approved" else "Rejected"
    meta = _metadata(detail)
    by = meta.get(f"{prefix}By") or (detail.get("LastModifiedBy") or {}).get("UserProfileName") or "unknown"
    reason = meta.get(f"{prefix}Reason") or detail.get("ApprovalDescription") or ""
    group = detail.get("ModelPackageGroupName", "")
    return make_record(
        "approval" if status == "Approved" else "rejection",
        time=meta.get(f"{prefix}At") or event.get("time") or _iso(dt.datetime.now(dt.timezone.utc)),
        actor=("person", by),
        subject={"model_package_group": group, "model_package_arn": detail.get("ModelPackageArn", ""),
                 "model_line": meta.get("ModelLine", "")},
        decision=status, reasons=[reason] if reason else [],
        evidence={"ApprovalDescription": detail.get("ApprovalDescription"), "TestAuc": meta.get("TestAuc"),
                  "ReportS3Uri": meta.get("ReportS3Uri"), "TrainingExecutionArn": meta.get("ExecutionArn")},
        source=("eventbridge", str(event.get("id") or "")),
    )


def from_execution_event(event: dict[str, Any]) -> dict[str, Any] | None:
    """A deployment's start and outcome, a training's start, from "Step Functions Execution Status Change"."""
    detail = event.get("detail") or {}
    machine = str(detail.get("stateMachineArn", "")).rsplit(":", 1)[-1]
    status = str(detail.get("status", ""))
    kind = next((k for (suffix, s), k in _EXECUTION_KINDS.items() if machine.endswith(suffix) and s == status), None)
    if kind is None:
        return None
    execution_input = _json(detail.get("input"))
    output = _json(detail.get("output"))
    reasons = [f"{detail.get('error')}: {detail.get('cause')}"] if detail.get("error") else []
    started_by = "schedule or event" if kind == "training_started" else "approval event or operator"
    evidence: dict[str, Any] = {"input": execution_input}
    if isinstance(output, dict):
        evidence["output"] = {k: output.get(k) for k in ("Line", "Names", "Restore", "Smoke") if k in output}
    package = execution_input.get("ModelPackageArn", "") if isinstance(execution_input, dict) else ""
    return make_record(
        kind,
        time=_ms_time(detail.get("stopDate") if status != "RUNNING" else detail.get("startDate")) or event.get("time", ""),
        actor=("service", f"{machine} ({started_by})"),
        subject={"execution_arn": detail.get("executionArn", ""), "model_package_arn": package},
        decision=status, reasons=reasons, evidence=evidence,
        source=("eventbridge", str(event.get("id") or "")),
    )


def from_event(event: dict[str, Any]) -> dict[str, Any] | None:
    detail_type = event.get("detail-type")
    if detail_type == "SageMaker Model Package State Change":
        return from_package_event(event)
    if detail_type == "Step Functions Execution Status Change":
        return from_execution_event(event)
    raise AuditError(f"audit recorder: no records from events of detail-type {detail_type!r}; "
                     f"the template's audit rules send only package and execution status changes")


def _json(text: Any) -> Any:
    if isinstance(text, str):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _ms_time(value: Any) -> str | None:
    if isinstance(value, (int, float)):
        return _iso(dt.datetime.fromtimestamp(value / 1000, dt.timezone.utc))
    return None


# ------------------------------------------------------------------------------------------------ decisions


def gate_record(execution_arn: str, answer: dict[str, Any]) -> dict[str, Any]:
    meta = answer.get("CustomerMetadataProperties") or {}
    passed = bool(answer.get("Passed"))
    return make_record(
        "gate_decision", time=dt.datetime.now(dt.timezone.utc), actor=("service", "quality gate"),
        subject={"execution_arn": execution_arn, "model_line": answer.get("ModelLine", ""),
                 "model_package_group": answer.get("ModelPackageGroupName", "")},
        decision="passed" if passed else "refused", reasons=list(answer.get("Reasons") or []),
        evidence={"metrics": {k: v for k, v in meta.items() if k.startswith(("Test", "Validation", "Fairness"))},
                  "ChampionModelPackageArn": answer.get("ChampionModelPackageArn"), "ReportS3Uri": answer.get("ReportS3Uri")},
        source=("execution", execution_arn),
    )


def ab_record(test_id: str, look: Any, decision: dict[str, Any]) -> dict[str, Any]:
    return make_record(
        "ab_decision", time=dt.datetime.now(dt.timezone.utc), actor=("service", "A/B decision"),
        subject={"endpoint_name": str(decision.get("EndpointName") or ""), "model_package_arn":
                 str(decision.get("ChallengerModelPackageArn") or "")},
        decision=str(decision.get("Decision")), reasons=[str(decision.get("Reason") or "")] if decision.get("Reason") else [],
        evidence=decision, source=("ab-test", f"{test_id}/look-{look}"),
    )


def monitoring_record(endpoint: str, schedule: str, run: str, result: dict[str, Any]) -> dict[str, Any]:
    return make_record(
        "monitoring_violations", time=dt.datetime.now(dt.timezone.utc), actor=("service", "monitoring"),
        subject={"endpoint_name": endpoint}, decision=f"{result.get('Violations')} violation(s)",
        reasons=[str(r) for r in result.get("Reasons") or []][:50],
        evidence={**result, "MonitoringSchedule": schedule}, source=("monitoring", run),
    )


def validate(record: dict[str, Any]) -> None:
    """Check `record` against the schema (jsonschema, when installed: tooling and tests; Lambda writes what
    `make_record` builds)."""
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    try:
        jsonschema.validate(record, schema, format_checker=jsonschema.FormatChecker())
    except jsonschema.ValidationError as exc:
        raise AuditError(f"audit record {record.get('record_id')}: {exc.message} at {'/'.join(map(str, exc.path))}") from None
