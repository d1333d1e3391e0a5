"""CloudWatch metrics of a data-quality run: Embedded Metric Format lines and PutMetricData batches."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pandas as pd
import pytest

from sagestep.aws.service_model import validate
from sagestep.monitoring.baseline import build_baseline
from sagestep.monitoring.data_quality import run_data_quality
from sagestep.monitoring.metrics_emf import ENDPOINT_NAMESPACE, emf_records, metric_data, put_metric_data

NUMERIC = ["Seniority", "Time", "Age", "Expenses", "Income", "Assets", "Debt", "Amount", "Price"]
CATEGORICAL = ["Home", "Marital", "Records", "Job"]
WHEN = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def run_result(credit_data: pd.DataFrame) -> Any:
    shuffled = credit_data.sample(frac=1.0, random_state=4).reset_index(drop=True)
    reference, current = shuffled.iloc[:2000], shuffled.iloc[2000:]
    statistics, constraints = build_baseline(reference, numeric=NUMERIC, categorical=CATEGORICAL)
    return run_data_quality(current[NUMERIC + CATEGORICAL], statistics, constraints)


class RecordingCloudWatch:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def put_metric_data(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {}


def test_emf_lines_carry_model_monitor_names_and_dimensions(run_result: Any) -> None:
    # GIVEN a data-quality result for the credit features
    # WHEN EMF documents are built for an endpoint and schedule
    records = emf_records(run_result.statistics, run_result.drift_report, schedule="hourly", endpoint="credit", timestamp=WHEN)
    lines = [json.loads(json.dumps(r)) for r in records]
    # THEN there is one document per feature, in the endpoint namespace, with the three dimensions
    assert [r["Feature"] for r in lines] == NUMERIC + CATEGORICAL
    age = lines[NUMERIC.index("Age")]
    directive = age["_aws"]["CloudWatchMetrics"][0]
    assert age["_aws"]["Timestamp"] == int(WHEN.timestamp() * 1000)
    assert directive["Namespace"] == "aws/sagemaker/Endpoints/data-metrics"
    assert directive["Dimensions"] == [["Endpoint", "MonitoringSchedule", "Feature"]]
    assert (age["Endpoint"], age["MonitoringSchedule"]) == ("credit", "hourly")
    # AND each metric named in the directive has a value at the top level
    names = {m["Name"] for m in directive["Metrics"]}
    assert names == {"feature_data_Age", "feature_non_null_Age", "feature_baseline_drift_Age"}
    assert age["feature_non_null_Age"] == 1.0
    assert age["feature_baseline_drift_Age"] >= 0.0
    # AND string features report completeness and drift but no numeric data metric
    home = lines[len(NUMERIC)]
    assert "feature_data_Home" not in home and "feature_non_null_Home" in home


def test_batch_monitoring_uses_the_batch_namespace_without_endpoint(run_result: Any) -> None:
    # GIVEN no endpoint (batch transform monitoring)
    records = emf_records(run_result.statistics, run_result.drift_report, schedule="nightly", endpoint=None, timestamp=WHEN)
    # THEN the namespace and dimensions follow Model Monitor's batch variant
    directive = records[0]["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "aws/sagemaker/ModelMonitoring/data-metrics"
    assert directive["Dimensions"] == [["MonitoringSchedule", "Feature"]]
    assert "Endpoint" not in records[0]


def test_put_metric_data_sends_valid_calls_of_at_most_1000_entries(run_result: Any) -> None:
    # GIVEN metric data for 13 features, repeated to 1,170 entries (more than one API call holds)
    entries = metric_data(run_result.statistics, run_result.drift_report, schedule="hourly", endpoint="credit", timestamp=WHEN)
    income = [e for e in entries if e["MetricName"] == "feature_data_Income"][0]
    assert set(income["StatisticValues"]) == {"SampleCount", "Sum", "Minimum", "Maximum"}
    many = entries * 30
    client = RecordingCloudWatch()
    # WHEN they are put with a client passed in
    calls = put_metric_data(client, ENDPOINT_NAMESPACE, many)
    # THEN the calls hold at most 1000 entries each, cover all entries, and validate against botocore's model
    assert calls == len(client.calls) == 2
    assert [len(c["MetricData"]) for c in client.calls] == [1000, len(many) - 1000]
    for call in client.calls:
        assert validate("cloudwatch", "PutMetricData", call) == []
