"""The monitoring state machine's decisions: capture window, report, retraining cool-down."""

from __future__ import annotations

import datetime as dt

from sagestep.monitoring import pipeline as monitoring_run

UTC = dt.timezone.utc


def test_window_keeps_capture_files_whose_hour_starts_inside_it():
    keys = [
        "Primary/2026/11/22/08/a.jsonl",
        "Primary/2026/11/22/09/b.jsonl",
        "Challenger/2026/11/22/09/c.jsonl",
        "Primary/2026/11/22/10/d.jsonl",
        "Primary/notes.txt",
    ]
    start, end = dt.datetime(2026, 11, 22, 9, tzinfo=UTC), dt.datetime(2026, 11, 22, 10, tzinfo=UTC)
    assert monitoring_run.window_keys(keys, start, end) == ["Challenger/2026/11/22/09/c.jsonl", "Primary/2026/11/22/09/b.jsonl"]


def test_report_sums_violations_and_names_checks_and_features():
    summaries = [
        {"Check": "data_quality", "Violations": 2, "ViolationTypes": ["baseline_drift_check"], "FlaggedFeatures": ["Income", "Amount"], "Records": 900},
        {"Check": "model_quality", "Violations": 0, "Records": 850},
        {"Check": "bias_attribution", "Skipped": "nothing", "Violations": 0, "Records": 0},
    ]
    result = monitoring_run.report(summaries)
    assert result["Violations"] == 2
    assert result["Reasons"] == ["data_quality: 2 violation(s) baseline_drift_check on Income, Amount"]


class FakeStepFunctions:
    def __init__(self, starts):
        self.starts = starts

    def list_executions(self, stateMachineArn, maxResults):
        return {"executions": [{"name": name, "startDate": start} for name, start in self.starts]}


def test_retraining_waits_out_the_cool_down_after_a_drift_started_one_of_the_same_line():
    now = dt.datetime(2026, 11, 22, 12, tzinfo=UTC)
    hours = dt.timedelta(hours=1)
    recent = FakeStepFunctions([("drift-credit-data-0123456789ab", now - 3 * hours), ("manual-1", now - hours)])
    assert monitoring_run.should_retrain(recent, "arn", now, 24, "credit-data")[0] is False
    old = FakeStepFunctions([("drift-credit-data-0123456789ab", now - 30 * hours)])
    assert monitoring_run.should_retrain(old, "arn", now, 24, "credit-data")[0] is True
    assert monitoring_run.should_retrain(FakeStepFunctions([("manual-1", now)]), "arn", now, 24, "credit-data")[0] is True
    # another line's drift retraining (even one whose name starts the same) does not hold this line back
    other = FakeStepFunctions([("drift-credit-data-2-0123456789ab", now - hours), ("drift-german-credit-0123456789ab", now - hours)])
    assert monitoring_run.should_retrain(other, "arn", now, 24, "credit-data")[0] is True


def test_no_retraining_without_a_recorded_dataset_config():
    now = dt.datetime(2026, 11, 22, 12, tzinfo=UTC)
    retrain, why = monitoring_run.should_retrain(FakeStepFunctions([]), "arn", now, 24, "credit-data", "")
    assert retrain is False and "DatasetConfigS3Uri" in why


def test_metrics_go_to_the_model_monitor_namespaces_with_endpoint_and_schedule():
    batches = monitoring_run.metric_data([{"Check": "model_quality", "Metrics": {"auc": 0.81, "f1": float("nan")}}], "ep", "hourly")
    (namespace, data), = batches.items()
    assert namespace == "aws/sagemaker/Endpoints/model-metrics"
    assert [d["MetricName"] for d in data] == ["auc"]
    assert data[0]["Dimensions"] == [{"Name": "Endpoint", "Value": "ep"}, {"Name": "MonitoringSchedule", "Value": "hourly"}]
