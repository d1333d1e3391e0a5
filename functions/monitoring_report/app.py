"""Monitoring report (Lambda): a model line's violations, their CloudWatch metrics, and the retraining decision."""

from __future__ import annotations

import datetime as dt
from typing import Any

import boto3

from sagestep.audit import records as audit
from sagestep.aws import envvars, metrics
from sagestep.monitoring import pipeline as monitoring_run
from sagestep.aws import s3io
from sagestep.aws.powertools import lambda_handler, logger


@lambda_handler
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
    for summary in summaries:
        metrics.emit("MonitoringViolations", int(summary.get("Violations", 0)), Check=str(summary.get("Check")))
        metrics.emit("MonitoringRecords", int(summary.get("Records", 0)), Check=str(summary.get("Check")))
    if result["Violations"]:
        run = ",".join(check.get("SummaryS3Uri", "") for check in event["Checks"])  # this window's run: one record
        record = audit.monitoring_record(event["EndpointName"], event["ScheduleName"], run, result)
        audit.write(s3, envvars.required(audit.BUCKET_ENV), record)
        logger.warning("monitoring found violations", extra={"Violations": result["Violations"], "Reasons": result["Reasons"]})
    retrain, why = monitoring_run.should_retrain(boto3.client("stepfunctions"), training_arn, dt.datetime.now(dt.timezone.utc),
                                                 cooldown_hours, event["ModelLine"], event.get("RetrainDatasetConfigS3Uri"))
    return {**result, "Retrain": bool(result["Violations"]) and retrain, "RetrainReason": why}
