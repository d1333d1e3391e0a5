"""Monitoring context (Lambda): a model line's live package, its drift baselines and lineage, and the capture files of
the window."""

from __future__ import annotations

from typing import Any

import boto3

from sagestep.monitoring import pipeline as monitoring_run
from sagestep.aws.powertools import lambda_handler


@lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    sagemaker, s3 = boto3.client("sagemaker"), boto3.client("s3")
    if event.get("ModelPackageArn"):  # a batch run names the package that scored; an endpoint run finds the live one
        package = sagemaker.describe_model_package(ModelPackageName=event["ModelPackageArn"])
    else:
        package = monitoring_run.live_package(sagemaker, event["ModelPackageGroupName"], event["EndpointName"])
    start, end = monitoring_run.parse_time(event["WindowStart"]), monitoring_run.parse_time(event["WindowEnd"])
    files = monitoring_run.write_manifest(s3, event["CaptureS3Uri"], event["ManifestS3Uri"], start, end)
    return {**monitoring_run.baselines(package), "CaptureFiles": files}
