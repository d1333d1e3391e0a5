"""CloudWatch metrics of a data-quality run, named like Model Monitor's.

Namespace `aws/sagemaker/Endpoints/data-metrics` with dimensions Endpoint, MonitoringSchedule and Feature (batch
monitoring: `aws/sagemaker/ModelMonitoring/data-metrics`, without Endpoint). Per feature:
- `feature_data_<f>`: numeric values. With PutMetricData it is a statistic set (SampleCount, Sum, Minimum, Maximum,
  so Average works too); Embedded Metric Format has no statistic sets, so there it is the mean.
- `feature_non_null_<f>`: completeness, the fraction of present values.
- `feature_baseline_drift_<f>`: the drift distance the baseline_drift_check compared (Robust or Simple).

`emf_records` returns the JSON documents (print one per line to a Lambda/Processing log); `metric_data` returns
PutMetricData entries and `put_metric_data` sends them in calls of at most 1000 entries with the client you pass.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

ENDPOINT_NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
BATCH_NAMESPACE = "aws/sagemaker/ModelMonitoring/data-metrics"
MAX_METRIC_DATA_PER_CALL = 1000


class CloudWatchClient(Protocol):
    def put_metric_data(self, **kwargs: Any) -> Any: ...


def namespace_for(endpoint: str | None) -> str:
    return ENDPOINT_NAMESPACE if endpoint else BATCH_NAMESPACE


def _dimensions(endpoint: str | None, schedule: str, feature: str) -> dict[str, str]:
    dims = {"Endpoint": endpoint} if endpoint else {}
    dims.update({"MonitoringSchedule": schedule, "Feature": feature})
    return dims


def _feature_values(statistics: Mapping[str, Any], drift_report: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Per feature: name, completeness, numeric statistic set (or None) and drift distance (or None)."""
    distances = {
        f["name"]: f["distance"] for f in (drift_report or {}).get("features", []) if f.get("distance") is not None
    }
    rows = []
    for feature in statistics.get("features", []):
        block = feature.get("numerical_statistics") or feature.get("string_statistics") or {}
        common = block.get("common", {})
        present, missing = int(common.get("num_present", 0)), int(common.get("num_missing", 0))
        num = feature.get("numerical_statistics")
        stat_set = None
        if num is not None and present and "mean" in num:
            stat_set = {
                "SampleCount": float(present),
                "Sum": float(num["sum"]),
                "Minimum": float(num["min"]),
                "Maximum": float(num["max"]),
                "mean": float(num["mean"]),
            }
        rows.append(
            {
                "name": feature["name"],
                "completeness": present / (present + missing) if present + missing else 0.0,
                "stat_set": stat_set,
                "drift": distances.get(feature["name"]),
            }
        )
    return rows


def emf_records(
    statistics: Mapping[str, Any],
    drift_report: Mapping[str, Any] | None,
    *,
    schedule: str,
    endpoint: str | None,
    timestamp: dt.datetime,
) -> list[dict[str, Any]]:
    """One Embedded Metric Format document per feature (pure; printing is the caller's job)."""
    namespace = namespace_for(endpoint)
    dimension_names = list(_dimensions(endpoint, schedule, "").keys())
    millis = int(timestamp.timestamp() * 1000)
    records = []
    for row in _feature_values(statistics, drift_report):
        name = row["name"]
        values: dict[str, float] = {f"feature_non_null_{name}": row["completeness"]}
        if row["stat_set"] is not None:
            values[f"feature_data_{name}"] = row["stat_set"]["mean"]
        if row["drift"] is not None:
            values[f"feature_baseline_drift_{name}"] = float(row["drift"])
        record: dict[str, Any] = {
            "_aws": {
                "Timestamp": millis,
                "CloudWatchMetrics": [
                    {
                        "Namespace": namespace,
                        "Dimensions": [dimension_names],
                        "Metrics": [{"Name": metric, "Unit": "None"} for metric in values],
                    }
                ],
            },
            **_dimensions(endpoint, schedule, name),
            **values,
        }
        records.append(record)
    return records


def metric_data(
    statistics: Mapping[str, Any],
    drift_report: Mapping[str, Any] | None,
    *,
    schedule: str,
    endpoint: str | None,
    timestamp: dt.datetime,
) -> list[dict[str, Any]]:
    """PutMetricData `MetricData` entries for every feature."""
    entries = []
    for row in _feature_values(statistics, drift_report):
        dims = [{"Name": k, "Value": v} for k, v in _dimensions(endpoint, schedule, row["name"]).items()]
        base = {"Dimensions": dims, "Timestamp": timestamp, "Unit": "None"}
        entries.append({"MetricName": f"feature_non_null_{row['name']}", "Value": row["completeness"], **base})
        if row["stat_set"] is not None:
            stat_set = {k: v for k, v in row["stat_set"].items() if k != "mean"}
            entries.append({"MetricName": f"feature_data_{row['name']}", "StatisticValues": stat_set, **base})
        if row["drift"] is not None:
            entries.append({"MetricName": f"feature_baseline_drift_{row['name']}", "Value": float(row["drift"]), **base})
    return entries


def batches(entries: Sequence[dict[str, Any]], size: int = MAX_METRIC_DATA_PER_CALL) -> list[list[dict[str, Any]]]:
    if not 1 <= size <= MAX_METRIC_DATA_PER_CALL:
        raise ValueError(f"batch size must be between 1 and {MAX_METRIC_DATA_PER_CALL}, got {size}")
    return [list(entries[i : i + size]) for i in range(0, len(entries), size)]


def put_metric_data(client: CloudWatchClient, namespace: str, entries: Sequence[dict[str, Any]]) -> int:
    """Send `entries` with `client.put_metric_data` in API-sized calls; returns the number of calls made."""
    calls = 0
    for batch in batches(entries):
        client.put_metric_data(Namespace=namespace, MetricData=batch)
        calls += 1
    return calls
