"""Merge ground truth (Lambda): join one variant's data capture with the labels arrived so far, on S3."""

from __future__ import annotations

import datetime as dt
from typing import Any

import boto3

from sagestep.monitoring.merge import parse_time
from sagestep.monitoring.merge_s3 import merge_look
from sagestep.aws.powertools import lambda_handler


@lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    at = parse_time(event["At"]) if event.get("At") else dt.datetime.now(dt.timezone.utc)
    return merge_look(
        boto3.client("s3"),
        event["CaptureS3Uri"],
        event["GroundTruthS3Uri"],
        event["OutputS3Uri"],
        at=at,
        start_offset=event.get("StartOffset") or "-P30D",
        end_offset=event.get("EndOffset") or "-PT0S",
        since=parse_time(event["Since"]) if event.get("Since") else None,
    )
