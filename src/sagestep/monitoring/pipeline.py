"""What the monitoring state machine's two Lambdas decide: what to monitor, and what the results mean.

- `monitoring_context`: the model package live on a model line's endpoint (the Approved package of the line's group
  whose recorded deployment is the endpoint's current config), its drift-check baselines and the lineage a
  retraining needs (data, dataset config, algorithm), and a manifest of the capture files of the window (hour
  folders `yyyy/mm/dd/hh` in [start, end)), so the data-quality job reads only that window.
- `monitoring_report`: the checks' summaries → total violations, CloudWatch metrics, and whether to start a
  retraining of the line (not within the cool-down after the line's last drift-started one, so one drift cannot
  start a storm).
Boto3 clients are passed in.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from sagestep.aws import s3io

RETRAIN_PREFIX = "drift-"
_HOUR = re.compile(r"(?:^|/)(\d{4})/(\d{2})/(\d{2})/(\d{2})/")


class NothingToMonitor(RuntimeError):
    pass


def live_package(sagemaker: Any, group: str, endpoint: str) -> dict[str, Any]:
    try:
        config = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    except sagemaker.exceptions.ClientError as exc:
        raise NothingToMonitor(f"endpoint {endpoint} does not exist: deploy a model first") from exc
    kwargs: dict[str, Any] = {"ModelPackageGroupName": group, "ModelApprovalStatus": "Approved",
                              "SortBy": "CreationTime", "SortOrder": "Descending"}
    while True:
        page = sagemaker.list_model_packages(**kwargs)
        for summary in page.get("ModelPackageSummaryList", []):
            package = sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            properties = package.get("CustomerMetadataProperties") or {}
            if properties.get("DeployedEndpoint") == endpoint and properties.get("DeployedEndpointConfig") == config:
                return package
        if not page.get("NextToken"):
            raise NothingToMonitor(f"no Approved package in {group} records a deployment of {endpoint} with config {config}")
        kwargs["NextToken"] = page["NextToken"]


def _dirname(uri: str) -> str:
    return uri.rsplit("/", 1)[0] + "/"


def baselines(package: dict[str, Any]) -> dict[str, str]:
    checks = package.get("DriftCheckBaselines") or {}
    try:
        statistics = checks["ModelDataQuality"]["Statistics"]["S3Uri"]
        quality = checks["ModelQuality"]["Constraints"]["S3Uri"]
    except KeyError as exc:
        raise NothingToMonitor(f"{package['ModelPackageArn']} has no DriftCheckBaselines.{exc.args[0]}: register it with the training pipeline") from exc
    run = statistics.rsplit("/baseline/", 1)[0] + "/"
    lineage = package.get("CustomerMetadataProperties") or {}
    return {
        "ModelPackageArn": package["ModelPackageArn"],
        "BaselineS3Uri": _dirname(statistics),
        "EvaluationS3Uri": _dirname(quality),
        "DatasetConfigS3Uri": run + "preprocess/config/",
        "ModelDataUrl": package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"],
        # what a drift-started retraining of the line reads: the live model's own data prefix and config
        "RetrainDataS3Uri": lineage.get("DataS3Uri", ""),
        "RetrainDatasetConfigS3Uri": lineage.get("DatasetConfigS3Uri", ""),
        "RetrainAlgorithm": lineage.get("Algorithm") or "lightgbm",
        # packages registered before ProblemType was recorded are all binary classifiers
        "ProblemType": lineage.get("ProblemType") or "BinaryClassification",
    }


def window_keys(keys: list[str], start: dt.datetime, end: dt.datetime) -> list[str]:
    """Capture files whose hour folder starts in [start, end)."""
    chosen = []
    for key in keys:
        match = _HOUR.search(key)
        if not match:
            continue
        hour = dt.datetime(*(int(g) for g in match.groups()), tzinfo=dt.timezone.utc)
        if start <= hour < end:
            chosen.append(key)
    return sorted(chosen)


def write_manifest(s3: Any, capture_prefix: str, manifest_uri: str, start: dt.datetime, end: dt.datetime) -> int:
    bucket, prefix = s3io.parse_s3_uri(capture_prefix if capture_prefix.endswith("/") else capture_prefix + "/")
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [item["Key"][len(prefix):] for item in page.get("Contents", []) if item["Key"].endswith(".jsonl")]
    chosen = window_keys(keys, start, end)
    manifest = [{"prefix": f"s3://{bucket}/{prefix}"}, *chosen]
    target_bucket, target_key = s3io.parse_s3_uri(manifest_uri)
    s3.put_object(Bucket=target_bucket, Key=target_key, Body=json.dumps(manifest).encode())
    return len(chosen)


def parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.timezone.utc)


def report(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    violations = sum(int(s.get("Violations", 0)) for s in summaries)
    reasons = [
        f"{s.get('Check')}: {s.get('Violations')} violation(s) {', '.join(s.get('ViolationTypes', []))}"
        + (f" on {', '.join(s['FlaggedFeatures'])}" if s.get("FlaggedFeatures") else "")
        for s in summaries
        if int(s.get("Violations", 0))
    ]
    return {"Violations": violations, "Reasons": reasons, "Records": {s.get("Check", "?"): s.get("Records", 0) for s in summaries}}


def metric_data(summaries: list[dict[str, Any]], endpoint: str, schedule: str) -> dict[str, list[dict[str, Any]]]:
    """PutMetricData batches per namespace (MONITORING_FORMATS.md): model-quality and data metrics."""
    namespaces = {"model_quality": "aws/sagemaker/Endpoints/model-metrics", "data_quality": "aws/sagemaker/Endpoints/data-metrics",
                  "bias_attribution": "aws/sagemaker/Endpoints/bias-metrics"}
    batches: dict[str, list[dict[str, Any]]] = {}
    dimensions = [{"Name": "Endpoint", "Value": endpoint}, {"Name": "MonitoringSchedule", "Value": schedule}]
    for summary in summaries:
        namespace = namespaces.get(summary.get("Check", ""))
        if namespace is None:
            continue
        for name, value in (summary.get("Metrics") or {}).items():
            if isinstance(value, (int, float)) and value == value:  # skip NaN
                batches.setdefault(namespace, []).append({"MetricName": name[:255], "Dimensions": dimensions, "Value": float(value)})
    return batches


def should_retrain(stepfunctions: Any, training_arn: str, now: dt.datetime, cooldown_hours: float, line: str,
                   dataset_config_s3_uri: str | None = None) -> tuple[bool, str]:
    """Whether to start a retraining of the model line: not when the live package records no dataset config to
    retrain with, nor within the cool-down after the line's last drift-started retraining (`drift-<line>-<hash>`)."""
    if dataset_config_s3_uri is not None and not dataset_config_s3_uri:
        return False, ("the live package records no DatasetConfigS3Uri (registered before model lines); start its "
                       "retraining by hand")
    page = stepfunctions.list_executions(stateMachineArn=training_arn, maxResults=100)
    own = re.compile(rf"^{re.escape(RETRAIN_PREFIX + line)}-[0-9a-f]{{12}}$")
    drift_started = [e for e in page.get("executions", []) if own.match(e["name"])]
    if not drift_started:
        return True, f"no earlier drift-started retraining of {line}"
    last = max(e["startDate"] for e in drift_started)
    if last.tzinfo is None:
        last = last.replace(tzinfo=dt.timezone.utc)
    if now - last < dt.timedelta(hours=cooldown_hours):
        return False, (f"the last drift retraining of {line} started {last.isoformat()}, within the {cooldown_hours:g} h "
                       f"cool-down")
    return True, f"the last drift retraining of {line} started {last.isoformat()}, before the cool-down"
