"""Percentile statistics for the local cloud's CloudWatch (moto 5.2.5 computes none).

`install()` patches moto's CloudWatch so that
- GetMetricStatistics honours `ExtendedStatistics` (["p99", "p97.66", ...]): each datapoint gets
  `ExtendedStatistics: {"p99": value, ...}`, and asking for Statistics and ExtendedStatistics in one call is the
  InvalidParameterCombination AWS returns;
- GetMetricData computes a `MetricStat.Stat` of the form "pNN" (it returned nothing for it before).

How it approximates AWS: CloudWatch documents what a percentile means (pNN: NN% of the period's values are lower or
equal) and when one exists (only from raw values, or statistic sets with SampleCount 1 or Minimum = Maximum; never
when a value is negative), not its algorithm, which works on a compressed histogram of the values. Locally the
percentile is exact, the nearest-rank value of the period's raw values (the ⌈NN/100 · n⌉-th smallest), so
a local p99 may differ from AWS's by its histogram's rounding, not by more than one rank on a continuum of values.
The A/B latency guardrail reads p99 and two more percentiles as distribution-free bounds for it, which hold for
nearest-rank percentiles; AWS's rounding moves them by the histogram's relative resolution.
"""

from __future__ import annotations

import math
import re
from typing import Any

_PERCENTILE = re.compile(r"^p(\d{1,3}(?:\.\d+)?)$")
_INSTALLED = False


def percentile_level(statistic: str) -> float | None:
    """The level of a percentile statistic "p99" / "p99.9" (0–100), else None."""
    match = _PERCENTILE.match(statistic)
    if not match:
        return None
    level = float(match.group(1))
    return level if 0.0 <= level <= 100.0 else None


def raw_values(data: list[Any]) -> list[float] | None:
    """The raw values of a period's data, or None when CloudWatch would not give a percentile for them."""
    from moto.cloudwatch.models import MetricAggregatedDatum, MetricDatum

    values: list[float] = []
    for datum in data:
        if isinstance(datum, MetricDatum):
            values.append(float(datum.value))
        elif isinstance(datum, MetricAggregatedDatum):
            if datum.sample_count != 1 and datum.min != datum.max:
                return None
            values.extend([float(datum.min)] * int(datum.sample_count))
    if not values or min(values) < 0:
        return None
    return values


def nearest_rank(values: list[float], level: float) -> float:
    ordered = sorted(values)
    rank = max(1, math.ceil(level / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def install() -> None:
    """Patch moto's CloudWatch once per process (idempotent); fails loudly if a patch point has moved."""
    global _INSTALLED
    if _INSTALLED:
        return
    from moto.cloudwatch import models, responses
    from moto.cloudwatch.exceptions import InvalidParameterCombination, InvalidParameterValue
    from moto.core.responses import ActionResult

    for owner, name in ((responses.CloudWatchResponse, "get_metric_statistics"), (models.Statistics, "get_statistics_for_type")):
        if not callable(getattr(owner, name, None)):
            raise RuntimeError(f"moto changed: {owner.__name__}.{name} is gone; update sagestep.local.cloudwatch")

    def get_metric_statistics(self: Any) -> Any:
        statistics = self._get_param("Statistics", [])
        extended = self._get_param("ExtendedStatistics", [])
        if statistics and extended:
            raise InvalidParameterCombination("Must specify either Statistics or ExtendedStatistics, but not both.")
        if not statistics and not extended:
            raise InvalidParameterCombination("Must specify either Statistics or ExtendedStatistics")
        levels = {}
        for statistic in extended:
            level = percentile_level(statistic)
            if level is None:
                raise InvalidParameterValue(f"The value {statistic} for parameter ExtendedStatistics is not supported.")
            levels[statistic] = level
        datapoints = self.cloudwatch_backend.get_metric_statistics(
            self._get_param("Namespace"), self._get_param("MetricName"), self._get_param("StartTime"),
            self._get_param("EndTime"), self._get_int_param("Period"), statistics, unit=self._get_param("Unit"),
            dimensions=self._get_param("Dimensions", []),
        )
        for point in datapoints:
            values = raw_values(point.metric_data) if levels else None
            point.extended_statistics = (
                {name: nearest_rank(values, level) for name, level in levels.items()} if values else None
            )
        return ActionResult({"Label": self._get_param("MetricName"), "Datapoints": datapoints})

    original = models.Statistics.get_statistics_for_type

    def get_statistics_for_type(self: Any, stat: str) -> Any:
        level = percentile_level(stat)
        if level is None:
            return original(self, stat)
        values = raw_values(self.metric_data)
        return nearest_rank(values, level) if values else None

    responses.CloudWatchResponse.get_metric_statistics = get_metric_statistics
    models.Statistics.get_statistics_for_type = get_statistics_for_type
    _INSTALLED = True
