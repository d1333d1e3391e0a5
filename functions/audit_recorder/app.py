"""Audit recorder (Lambda, EventBridge target): approvals and rejections from the Model Registry's package state
changes, deployment and training starts and outcomes from Step Functions' execution status changes, each written once
to the audit bucket."""

from __future__ import annotations

from typing import Any

import boto3

from sagestep.audit import records as audit
from sagestep.aws import envvars
from sagestep.aws.powertools import lambda_handler, logger


@lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bucket = envvars.required(audit.BUCKET_ENV)
    record = audit.from_event(event)
    if record is None:
        return {"Recorded": None}
    key = audit.write(boto3.client("s3"), bucket, record)
    logger.info("audit record", extra={"Kind": record["kind"], "Key": key, "AlreadyRecorded": key is None})
    return {"Recorded": key}
