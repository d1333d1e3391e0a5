"""Monitoring report (Lambda): a model line's violations, their CloudWatch metrics, and the retraining decision."""

from __future__ import annotations

import datetime as dt
from typing import Any

import boto3

from sagestep.aws import envvars
from sagestep.monitoring import pipeline as monitoring_run
from sagestep.aws import s3io


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    training_arn = envvars.required("TRAINING_STATE_MACHINE_ARN")
    cooldown_hours = envvars.required_number("RETRAIN_COOLDOWN_HOURS", minimum=0)
    s3, cloudwatch = boto3.client("s3"), boto3.client("cloudwatch")
    summaries = [
        s3io.read_json(s3, check["SummaryS3Uri"]) if "SummaryS3Uri" in check else {**check, "Violations": 0, "Records": 0}
        for check in event["Checks"]
    ]
    for namespace, data in monitoring_run.metric_data(summaries, event["EndpointName"], event["ScheduleName"]).items():
        for start in range(0, len(data), 1000):
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[start:start + 1000])
    result = monitoring_run.report(summaries)
    retrain, why = monitoring_run.should_retrain(boto3.client("stepfunctions"), training_arn, dt.datetime.now(dt.timezone.utc),
                                                 cooldown_hours, event["ModelLine"], event.get("RetrainDatasetConfigS3Uri"))
    return {**result, "Retrain": bool(result["Violations"]) and retrain, "RetrainReason": why}
