"""Audit records (src/sagestep/audit/records.py): each decision kind built from what AWS emits or the deciding
function knows, valid against the versioned schema, keyed once per decision."""

from __future__ import annotations

import copy
import json

import pytest

from sagestep.audit import records as audit
from tests.conftest import load_event

APPROVAL = load_event("rule_audit_approvals_rule")
DEPLOYMENT_FAILED = load_event("rule_audit_executions_rule")


def test_an_approval_event_becomes_an_approval_record_with_who_and_why():
    record = audit.from_event(APPROVAL)
    audit.validate(record)
    assert (record["kind"], record["decision"], record["actor"]) == ("approval", "Approved", {"type": "person", "name": "Ana Risk"})
    assert record["reasons"] == ["AUC and fairness reviewed"] and record["time"] == "2026-11-29T09:00:13Z"
    assert record["subject"]["model_package_arn"].endswith("sagestep-dev-credit-data/3")


def test_a_second_approval_of_the_same_package_is_a_new_record_and_a_redelivery_is_the_same():
    second = copy.deepcopy(APPROVAL)
    second["id"] = "0e8f3f7e-aaaa-4bbb-8ccc-123456789abc"
    second["detail"]["CustomerMetadataProperties"].update(ApprovedBy="Ben Audit", ApprovedAt="2026-11-30T10:00:00Z")
    first, again, other = audit.from_event(APPROVAL), audit.from_event(copy.deepcopy(APPROVAL)), audit.from_event(second)
    assert audit.record_key(first) == audit.record_key(again)
    assert audit.record_key(first) != audit.record_key(other) and other["actor"]["name"] == "Ben Audit"


def test_a_rejection_is_recorded_and_a_metadata_update_of_an_approved_package_is_not():
    rejection = copy.deepcopy(APPROVAL)
    rejection["detail"].update(ModelApprovalStatus="Rejected", CustomerMetadataProperties={
        "RejectedBy": "Cleo Risk", "RejectedAt": "2026-11-29T11:00:00Z", "RejectedReason": "disparate impact on Age"})
    record = audit.from_event(rejection)
    audit.validate(record)
    assert (record["kind"], record["actor"]["name"], record["reasons"]) == ("rejection", "Cleo Risk", ["disparate impact on Age"])
    deployed = copy.deepcopy(APPROVAL)
    deployed["detail"]["UpdatedModelPackageFields"] = ["CustomerMetadataProperties"]  # the deployment recorded on it
    assert audit.from_event(deployed) is None


def test_a_failed_deployment_is_recorded_with_its_cause_and_package():
    record = audit.from_event(DEPLOYMENT_FAILED)
    audit.validate(record)
    assert (record["kind"], record["decision"]) == ("deployment_failed", "FAILED")
    assert record["reasons"] == ["UpdateRolledBack: SageMaker kept sagestep-dev-credit-data on sagestep-dev-credit-data-2: "
                                 "alarm sagestep-dev-credit-data-5xx"]
    assert record["subject"]["model_package_arn"].endswith("/3") and record["time"] == "2026-11-29T09:12:40Z"


@pytest.mark.parametrize(("machine", "status", "kind"), [
    ("sagestep-dev-deployment", "RUNNING", "deployment_started"),
    ("sagestep-dev-deployment", "SUCCEEDED", "deployment_succeeded"),
    ("sagestep-dev-deployment", "ABORTED", "deployment_failed"),
    ("sagestep-dev-training", "RUNNING", "training_started"),
    ("sagestep-dev-training", "SUCCEEDED", None),
    ("sagestep-dev-monitoring", "RUNNING", None),
])
def test_execution_status_changes_map_to_their_kind(machine, status, kind):
    event = copy.deepcopy(DEPLOYMENT_FAILED)
    event["detail"].update(stateMachineArn=f"arn:aws:states:us-east-1:123456789012:stateMachine:{machine}", status=status,
                           error=None, cause=None)
    record = audit.from_event(event)
    assert (record or {}).get("kind") == kind
    if record:
        audit.validate(record)


def test_gate_ab_and_monitoring_records_follow_the_schema():
    gate = audit.gate_record("arn:aws:states:us-east-1:123456789012:execution:sagestep-dev-training:run-1", {
        "Passed": False, "Reasons": ["Test AUC 0.71 below 0.75"], "ModelLine": "credit-data",
        "ModelPackageGroupName": "sagestep-dev-credit-data", "CustomerMetadataProperties": {"TestAuc": "0.710000"}})
    ab = audit.ab_record("s3://b/ab-tests/t1/evidence", 3, {"Decision": "promote", "Reasons": ["challenger better"],
                                                           "EndpointName": "sagestep-dev-credit-data", "Look": 3})
    monitoring = audit.monitoring_record("sagestep-dev-credit-data", "hourly", "s3://b/monitoring/run/summary.json",
                                         {"Violations": 2, "Reasons": ["data_quality: 2 violation(s)"], "Records": {}})
    for record in (gate, ab, monitoring):
        audit.validate(record)
    assert gate["decision"] == "refused" and gate["evidence"]["metrics"] == {"TestAuc": "0.710000"}
    assert ab["decision"] == "promote" and monitoring["decision"] == "2 violation(s)"


def test_a_record_that_breaks_the_schema_is_refused():
    record = audit.from_event(APPROVAL)
    record["actor"]["type"] = "robot"
    with pytest.raises(audit.AuditError, match="actor/type"):
        audit.validate(record)


class _Conditional:
    """An S3 client that honours If-None-Match: * as S3 does."""

    class exceptions:
        from botocore.exceptions import ClientError

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_object(self, *, Bucket, Key, Body, ContentType, IfNoneMatch):  # noqa: N803 - boto3's names
        if IfNoneMatch == "*" and Key in self.objects:
            raise self.exceptions.ClientError({"Error": {"Code": "PreconditionFailed"}}, "PutObject")
        self.objects[Key] = Body


def test_write_never_overwrites_a_recorded_decision():
    s3 = _Conditional()
    record = audit.from_event(APPROVAL)
    key = audit.write(s3, "audit", record)
    assert key == f"audit/v1/approval/{record['record_id']}.json" and json.loads(s3.objects[key]) == record
    altered = {**record, "reasons": ["rewritten"]}
    assert audit.write(s3, "audit", altered) is None and json.loads(s3.objects[key]) == record
