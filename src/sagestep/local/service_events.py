"""The events AWS services send to EventBridge, built from what happened in the local cloud (shapes from the S3, SageMaker
and Step Functions developer guides; see README "Known differences" for what is approximated)."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from typing import Any
from urllib.parse import parse_qs
from xml.etree import ElementTree

_UPDATE_FIELDS = {"ModelApprovalStatus": "ModelApprovalStatus", "ApprovalDescription": "ApprovalDescription",
                  "CustomerMetadataProperties": "CustomerMetadataProperties",
                  "CustomerMetadataPropertiesToRemove": "CustomerMetadataProperties",
                  "InferenceSpecification": "InferenceSpecification", "AdditionalInferenceSpecificationsToAdd":
                  "InferenceSpecification", "ModelLifeCycle": "ModelLifeCycle", "SourceUri": "sourceUri",
                  "ModelCard": "ModelCard"}
_COMPARED = {"ModelApprovalStatus", "ApprovalDescription", "CustomerMetadataProperties"}
_NOT_AN_OBJECT_WRITE = ("uploadId", "partNumber", "tagging", "acl", "retention", "legal-hold", "restore", "uploads",
                        "versioning", "notification", "object-lock", "policy", "lifecycle", "encryption")


def _ms(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return int(value.timestamp() * 1000)
    if isinstance(value, str):
        try:
            return _ms(dt.datetime.fromisoformat(value))
        except ValueError:
            return value
    return value


def _iso(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def _plain(value: Any, time_format: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v, time_format) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_plain(v, time_format) for v in value]
    if isinstance(value, dt.datetime):
        return time_format(value)
    return value


# ------------------------------------------------------------------------------------------------------------ S3


def s3_object_events(request: dict[str, Any]) -> list[tuple[str, dict[str, Any], list[str]]]:
    """Object Created / Object Deleted for a successful S3 request, if its bucket sends events to EventBridge."""
    from moto.s3.models import s3_backends

    parts = request["path"].lstrip("/").split("/", 1)
    bucket_name, key = parts[0], (parts[1] if len(parts) > 1 else "")
    backend = s3_backends["123456789012"]["aws"]
    bucket = backend.buckets.get(bucket_name)
    if bucket is None or getattr(bucket.notification_configuration, "event_bridge", None) is None:
        return []
    query = parse_qs(request["query"], keep_blank_values=True)
    method = request["method"]
    requester = {"request-id": uuid.uuid4().hex[:16].upper(), "requester": "123456789012",
                 "source-ip-address": request["remote_addr"]}
    events = []
    if method == "PUT" and key and not any(name in query for name in _NOT_AN_OBJECT_WRITE):
        reason = "CopyObject" if request.get("copy_source") else "PutObject"
        events.append(("Object Created", _created(bucket, key, reason, requester), [f"arn:aws:s3:::{bucket_name}"]))
    elif method == "POST" and key and "uploadId" in query:
        events.append(("Object Created", _created(bucket, key, "CompleteMultipartUpload", requester), [f"arn:aws:s3:::{bucket_name}"]))
    elif method == "DELETE" and key and "uploadId" not in query and "tagging" not in query:
        events.append(("Object Deleted", _deleted(bucket, key, query.get("versionId", [None])[0], requester),
                       [f"arn:aws:s3:::{bucket_name}"]))
    elif method == "POST" and not key and "delete" in query and request.get("body"):
        try:
            root = ElementTree.fromstring(request["body"])
        except ElementTree.ParseError:
            return events
        for element in root.iter():
            if element.tag.endswith("Object"):
                name = next((c.text for c in element if c.tag.endswith("Key")), None)
                version = next((c.text for c in element if c.tag.endswith("VersionId")), None)
                if name:
                    events.append(("Object Deleted", _deleted(bucket, name, version, requester), [f"arn:aws:s3:::{bucket_name}"]))
    return events


def _sequencer() -> str:
    return f"{int(dt.datetime.now(dt.timezone.utc).timestamp() * 1e6):X}"


def _created(bucket: Any, key: str, reason: str, requester: dict[str, str]) -> dict[str, Any]:
    stored = bucket.keys.get(key)
    obj: dict[str, Any] = {"key": key}
    if stored is not None and hasattr(stored, "size"):
        obj.update(size=stored.size, etag=stored.etag.strip('"'))
        if bucket.is_versioned:
            obj["version-id"] = stored.version_id
    obj["sequencer"] = _sequencer()
    return {"version": "0", "bucket": {"name": bucket.name}, "object": obj, **requester, "reason": reason}


def _deleted(bucket: Any, key: str, version_id: str | None, requester: dict[str, str]) -> dict[str, Any]:
    marker = bucket.is_versioned and version_id is None
    obj: dict[str, Any] = {"key": key, "sequencer": _sequencer()}
    current = bucket.keys.get(key) if marker else None
    if current is not None:
        obj["version-id"] = current.version_id
    elif version_id:
        obj["version-id"] = version_id
    return {"version": "0", "bucket": {"name": bucket.name}, "object": obj, **requester, "reason": "DeleteObject",
            "deletion-type": "Delete Marker Created" if marker else "Permanently Deleted"}


# ------------------------------------------------------------------------------------------------------------ SageMaker


def model_package_event(backend: Any, action: str, request: dict[str, Any]) -> tuple[dict[str, Any], list[str]] | None:
    """SageMaker Model Package State Change after CreateModelPackage / UpdateModelPackage: the package as
    DescribeModelPackage shows it, and for an update the fields it changed (UpdatedModelPackageFields)."""
    try:
        body = json.loads(request["body"] or b"{}")
        answer = json.loads(request["response"] or b"{}")
    except json.JSONDecodeError:
        return None
    arn = answer.get("ModelPackageArn") or body.get("ModelPackageArn")
    if not arn:
        return None
    name = backend.model_package_name_mapping.get(arn, arn)
    package = backend.model_packages.get(name)
    if package is None:
        return None
    detail = _plain(package.gen_response_object(), _iso)
    detail.pop("Arn", None)
    detail["ModelPackageArn"] = package.arn
    for moto_only in ("ClientToken", "ModelPackageType"):
        detail.pop(moto_only, None)
    if isinstance(detail.get("Tags"), list):
        detail["Tags"] = {t["Key"]: t["Value"] for t in detail["Tags"] if isinstance(t, dict) and "Key" in t}
    if action == "UpdateModelPackage":
        # what the update changed (an approval repeated with the same status does not change ModelApprovalStatus)
        before = request.get("package_before") or {}
        after = json.loads(json.dumps(package.gen_response_object(), default=str))
        fields = {_UPDATE_FIELDS[k] for k in body if k in _UPDATE_FIELDS}
        detail["UpdatedModelPackageFields"] = sorted(
            field for field in fields
            if field not in _COMPARED or before.get(field) != after.get(field))
    return detail, [package.arn]


def job_state_detail(job: Any) -> dict[str, Any]:
    detail = _plain(job.describe(), _ms)
    tags = job.request.get("Tags") or []
    detail["Tags"] = {t["Key"]: t["Value"] for t in tags if isinstance(t, dict) and "Key" in t}
    return detail


def endpoint_state_detail(endpoint: Any) -> dict[str, Any]:
    status = re.sub(r"(?<!^)(?=[A-Z])", "_", endpoint.endpoint_status).upper()  # InService -> IN_SERVICE, as AWS sends it
    detail = {"EndpointName": endpoint.endpoint_name, "EndpointArn": endpoint.arn,
              "EndpointConfigName": endpoint.endpoint_config_name,
              "ProductionVariants": [{k: v for k, v in variant.items() if k in ("VariantName", "DesiredWeight",
                                                                                "CurrentWeight", "DesiredInstanceCount")}
                                     for variant in endpoint.production_variants or []],
              "EndpointStatus": status, "CreationTime": _ms(endpoint.creation_time),
              "LastModifiedTime": _ms(endpoint.last_modified_time), "Tags": {}}
    if getattr(endpoint, "failure_reason", None):
        detail["FailureReason"] = endpoint.failure_reason
    return detail


# ------------------------------------------------------------------------------------------------------------ Step Functions


def execution_status_detail(record: dict[str, Any]) -> dict[str, Any]:
    execution = record["execution"]
    succeeded = execution["status"] == "SUCCEEDED"
    return {"executionArn": execution["executionArn"], "stateMachineArn": execution["stateMachineArn"],
            "name": execution["name"], "status": execution["status"], "startDate": _ms(execution["startDate"]),
            "stopDate": _ms(execution["stopDate"]) if execution.get("stopDate") else None,
            "input": json.dumps(execution.get("input")), "inputDetails": {"included": True},
            "output": json.dumps(execution.get("output")) if succeeded else None,
            "outputDetails": {"included": True} if succeeded else None}
