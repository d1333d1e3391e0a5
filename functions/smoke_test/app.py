"""Smoke test (Lambda): send sample rows through a deployed endpoint; check the response contract and latency."""

from __future__ import annotations

from typing import Any

import boto3

from sagestep.aws import envvars
from sagestep.aws import s3io
from sagestep.serving import smoke
from sagestep.aws.powertools import lambda_handler


@lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event.get("SamplePayloadUrl"):  # from the model package (the deployment state machine passes it)
        bucket, key = s3io.parse_s3_uri(event["SamplePayloadUrl"])
        archive = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        event = {**event, **smoke.rows_from_sample_payload(archive, event["SamplePayloadUrl"])}
    request = smoke.SmokeTestEvent.from_event(event)
    max_latency_ms = envvars.required_number(smoke.MAX_LATENCY_ENV, minimum=1)
    runtime = boto3.client("sagemaker-runtime", config=smoke.client_config())
    run_id = getattr(context, "aws_request_id", None) or "local"
    return smoke.run_smoke_test(runtime, request, max_latency_ms=max_latency_ms, run_id=run_id)
