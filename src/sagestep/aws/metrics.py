"""The stack's own CloudWatch metrics, written by the functions with Powertools Metrics (Embedded Metric Format in
their logs; CloudWatch extracts them, no PutMetricData call). Namespace: POWERTOOLS_METRICS_NAMESPACE
(`sagestep-<Environment>`, template Globals). The dashboard and the alarms name only metrics listed here or published
by AWS services (tests/static/test_dashboard_metrics.py checks both)."""

from __future__ import annotations

from sagestep.aws import envvars

NAMESPACE_ENV = "POWERTOOLS_METRICS_NAMESPACE"
CATALOGUE: dict[str, tuple[str, ...]] = {  # metric name -> its dimensions, in order
    "GateDecisions": ("Outcome",),  # quality gate: passed | refused
    "ABTestDecisions": ("Decision",),  # A/B test end: promote | keep_champion | abort
    "MonitoringViolations": ("Check",),  # per monitoring run and check (data_quality, model_quality, bias_attribution)
    "MonitoringRecords": ("Check",),  # records a check read in its window (0: no data)
}


def emit(name: str, value: float, **dimensions: str) -> None:
    """One metric data point with exactly its catalogued dimensions."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    expected = CATALOGUE.get(name)
    if expected is None or tuple(dimensions) != expected:
        raise ValueError(f"metric {name} with dimensions {sorted(dimensions)} is not in sagestep.aws.metrics.CATALOGUE "
                         f"({expected}); add it there so the dashboard and alarms can name it")
    with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace=envvars.required(NAMESPACE_ENV)) as metric:
        for key, dimension_value in dimensions.items():
            metric.add_dimension(name=key, value=str(dimension_value))
