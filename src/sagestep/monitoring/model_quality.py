"""Model-quality monitoring: Model Monitor statistics of merged traffic and violations against constraints.

Statistics come from `sagestep.metrics` (standard_deviation over 5 random 80% subsamples, "NaN" below 200 rows).
A constraint `{"threshold": t, "comparison_operator": op}` is violated when `value op t` holds, as in Model
Monitor (`LessThanThreshold`: the metric fell below t). Violations use Model Monitor's shape:
`{"metric_name": "auc", "constraint_check_type": "LessThanThreshold", "description": "Metric auc with 0.71 +/- 0.01
was LessThanThreshold '0.8'"}`.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Any

import numpy as np

from sagestep.training.metrics import binary_classification_statistics, regression_statistics

PROBLEM_TYPES = {
    "BinaryClassification": ("binary_classification_metrics", "binary_classification_constraints"),
    "Regression": ("regression_metrics", "regression_constraints"),
}
OPERATORS = {
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
    "GreaterThanThreshold": operator.gt,
    "GreaterThanOrEqualToThreshold": operator.ge,
}


class ModelQualityInputError(ValueError):
    """Bad constraints or labels; the message names the field and the fix."""


def model_quality_statistics(
    labels: np.ndarray, scores: np.ndarray, problem_type: str, *, threshold: float = 0.5, seed: int = 0
) -> dict[str, Any]:
    if problem_type not in PROBLEM_TYPES:
        raise ModelQualityInputError(f"problem type {problem_type!r} is not supported; use one of {sorted(PROBLEM_TYPES)}")
    if problem_type == "BinaryClassification":
        bad = ~np.isin(labels, (0.0, 1.0))
        if bad.any():
            raise ModelQualityInputError(
                f"ground truth must be 0 or 1 for BinaryClassification; {int(bad.sum())} label(s) such as "
                f"{labels[bad][0]!r} are not: write groundTruthData.data as \"1\" (positive) or \"0\""
            )
        return binary_classification_statistics(labels, scores, threshold, seed=seed)
    return regression_statistics(labels, scores, seed=seed)


def empty_statistics(problem_type: str) -> dict[str, Any]:
    section = PROBLEM_TYPES[problem_type][0]
    return {"version": 0.0, "dataset": {"item_count": 0}, section: {}}


def constraint_violations(statistics: Mapping[str, Any], constraints: Mapping[str, Any], problem_type: str,
                          source: str = "constraints") -> dict[str, Any]:
    """constraint_violations.json of `statistics` against a model-quality constraints document."""
    section_name, constraints_name = PROBLEM_TYPES[problem_type]
    rules = constraints.get(constraints_name)
    if not isinstance(rules, Mapping):
        raise ModelQualityInputError(
            f"{source}: field {constraints_name!r} is missing; the constraints must be for {problem_type} "
            f"(ml/evaluate.py writes model_quality_constraints.json)"
        )
    section = statistics.get(section_name, {})
    violations = []
    for metric, rule in rules.items():
        if not isinstance(rule, Mapping) or rule.get("comparison_operator") not in OPERATORS:
            raise ModelQualityInputError(
                f"{source}: {constraints_name}.{metric}.comparison_operator must be one of {sorted(OPERATORS)}")
        try:
            threshold = float(rule["threshold"])
        except (KeyError, TypeError, ValueError):
            raise ModelQualityInputError(f"{source}: {constraints_name}.{metric}.threshold must be a number") from None
        entry = section.get(metric)
        if not isinstance(entry, Mapping):
            continue  # the metric is undefined on this window (e.g. auc with one class only)
        value = entry.get("value")
        if not isinstance(value, int | float):
            continue
        op = rule["comparison_operator"]
        if OPERATORS[op](value, threshold):
            std = entry.get("standard_deviation")
            spread = f" +/- {std}" if isinstance(std, int | float) else ""
            violations.append({
                "metric_name": metric,
                "constraint_check_type": op,
                "description": f"Metric {metric} with {value}{spread} was {op} '{threshold}'",
            })
    return {"violations": violations}


def scalar_metrics(statistics: Mapping[str, Any]) -> dict[str, float]:
    """{metric: value} of the numeric metrics (the CloudWatch model-metrics names)."""
    out: dict[str, float] = {}
    for section_name, _ in PROBLEM_TYPES.values():
        for name, entry in statistics.get(section_name, {}).items():
            if isinstance(entry, Mapping) and isinstance(entry.get("value"), int | float):
                out[name] = float(entry["value"])
    return out


def run_model_quality(
    labels: np.ndarray, scores: np.ndarray, constraints: Mapping[str, Any], problem_type: str, *,
    threshold: float = 0.5, source: str = "constraints",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(statistics, constraint_violations) for one window; an empty window gives item_count 0, no violations."""
    if problem_type not in PROBLEM_TYPES:
        raise ModelQualityInputError(f"problem type {problem_type!r} is not supported; use one of {sorted(PROBLEM_TYPES)}")
    if np.size(labels) == 0:
        constraint_violations({}, constraints, problem_type, source)  # still validate the constraints
        return empty_statistics(problem_type), {"violations": []}
    statistics = model_quality_statistics(np.asarray(labels), np.asarray(scores), problem_type, threshold=threshold)
    return statistics, constraint_violations(statistics, constraints, problem_type, source)
