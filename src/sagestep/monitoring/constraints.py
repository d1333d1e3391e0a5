"""Model Monitor `constraints.json`: suggestion from baseline statistics, and the effective per-feature config.

Suggestions follow Deequ's rules: a complete column must stay complete, a partly complete one keeps the lower end
of a 95% interval of its completeness (rounded down to 2 decimals); numbers that were never negative must stay
non-negative; a String column with at most 120 distinct values, of which at most 10% were seen once, gets its
values as a domain.

Per-feature overrides are read from `monitoringConfigOverrides` (AWS docs) or `monitoring_config_overrides`
(SageMaker SDK), flat (`{"comparison_threshold": 0.2}`) or nested like the global block
(`{"distribution_constraints": {...}}`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

CONSTRAINTS_VERSION = 0.0
COMPARISON_METHODS = ("Simple", "Robust")
CATEGORICAL_DRIFT_METHODS = ("LInfinity", "ChiSquared")
DOMAIN_MAX_DISTINCT = 120
DOMAIN_MAX_SINGLETON_RATIO = 0.1
OVERRIDE_KEYS = ("monitoringConfigOverrides", "monitoring_config_overrides")

DEFAULT_MONITORING_CONFIG: dict[str, Any] = {
    "evaluate_constraints": "Enabled",
    "emit_metrics": "Enabled",
    "datatype_check_threshold": 1.0,
    "domain_content_threshold": 1.0,
    "distribution_constraints": {
        "perform_comparison": "Enabled",
        "comparison_threshold": 0.1,
        "comparison_method": "Robust",
        "categorical_comparison_threshold": 0.1,
        "categorical_drift_method": "LInfinity",
    },
}


class ConstraintsError(ValueError):
    """A constraints document with a bad field; the message names the field and the fix."""


@dataclass(frozen=True)
class FeatureConfig:
    """Monitoring settings in force for one feature (global `monitoring_config` plus its overrides)."""

    evaluate_constraints: bool = True
    emit_metrics: bool = True
    datatype_check_threshold: float = 1.0
    domain_content_threshold: float = 1.0
    perform_comparison: bool = True
    comparison_threshold: float = 0.1
    comparison_method: str = "Robust"
    categorical_comparison_threshold: float = 0.1
    categorical_drift_method: str = "LInfinity"


def suggest_constraints(statistics: Mapping[str, Any]) -> dict[str, Any]:
    """constraints.json for the features of a statistics.json document, in the same order."""
    features = []
    for feature in _features(statistics, "statistics"):
        name = feature["name"]
        inferred = feature.get("inferred_type", "Unknown")
        entry: dict[str, Any] = {"name": name, "inferred_type": inferred}
        block = feature.get("numerical_statistics") or feature.get("string_statistics") or {}
        common = block.get("common", {})
        present = int(common.get("num_present", 0))
        missing = int(common.get("num_missing", 0))
        entry["completeness"] = _suggest_completeness(present, missing)
        num = feature.get("numerical_statistics")
        if num is not None and "min" in num:
            entry["num_constraints"] = {"is_non_negative": bool(num["min"] >= 0)}
        strings = feature.get("string_statistics")
        if strings is not None:
            domain = _suggest_domain(strings)
            if domain is not None:
                entry["string_constraints"] = {"domains": domain}
        features.append(entry)
    return {"version": CONSTRAINTS_VERSION, "features": features, "monitoring_config": copy.deepcopy(DEFAULT_MONITORING_CONFIG)}


def _suggest_completeness(present: int, missing: int) -> float:
    total = present + missing
    if total == 0 or missing == 0:
        return 1.0
    p = present / total
    lower = p - 1.96 * math.sqrt(p * (1 - p) / total)
    return max(0.0, math.floor(lower * 100) / 100)


def _suggest_domain(strings: Mapping[str, Any]) -> list[str] | None:
    buckets = strings.get("distribution", {}).get("categorical", {}).get("buckets", [])
    distinct = int(strings.get("distinct_count", len(buckets)))
    if not buckets or distinct > DOMAIN_MAX_DISTINCT or distinct != len(buckets):
        return None
    singletons = sum(1 for b in buckets if b.get("count") == 1)
    if singletons / len(buckets) > DOMAIN_MAX_SINGLETON_RATIO:
        return None
    return sorted(str(b["value"]) for b in buckets)


def _features(document: Mapping[str, Any], what: str) -> list[Mapping[str, Any]]:
    features = document.get("features") if isinstance(document, Mapping) else None
    if not isinstance(features, list):
        raise ConstraintsError(f"{what}: 'features' must be a list of feature objects")
    for i, feature in enumerate(features):
        if not isinstance(feature, Mapping) or not isinstance(feature.get("name"), str):
            raise ConstraintsError(f"{what}: features[{i}] must be an object with a string 'name'")
    return features


def constraint_features(constraints: Mapping[str, Any], source: str = "constraints.json") -> list[Mapping[str, Any]]:
    """The feature entries of a constraints document, validated."""
    return _features(constraints, source)


def global_config(constraints: Mapping[str, Any], source: str = "constraints.json") -> FeatureConfig:
    block = constraints.get("monitoring_config", {})
    if not isinstance(block, Mapping):
        raise ConstraintsError(f"{source}: monitoring_config must be an object")
    return _apply(FeatureConfig(), block, f"{source}: monitoring_config")


def feature_config(
    constraints: Mapping[str, Any], feature: Mapping[str, Any] | None, source: str = "constraints.json"
) -> FeatureConfig:
    """Global settings with the feature's overrides (both spellings) applied."""
    config = global_config(constraints, source)
    if feature is None:
        return config
    for key in OVERRIDE_KEYS:
        overrides = feature.get(key)
        if overrides is None:
            continue
        where = f"{source}: feature {feature.get('name')!r} {key}"
        if not isinstance(overrides, Mapping):
            raise ConstraintsError(f"{where} must be an object, e.g. {{\"comparison_threshold\": 0.2}}")
        config = _apply(config, overrides, where)
    return config


def _apply(config: FeatureConfig, block: Mapping[str, Any], where: str) -> FeatureConfig:
    flat = {k: v for k, v in block.items() if k != "distribution_constraints"}
    nested = block.get("distribution_constraints", {})
    if not isinstance(nested, Mapping):
        raise ConstraintsError(f"{where}.distribution_constraints must be an object")
    flat.update(nested)
    changes: dict[str, Any] = {}
    for key, value in flat.items():
        field_where = f"{where}.{key}"
        if key in ("evaluate_constraints", "emit_metrics", "perform_comparison"):
            changes[key] = _enabled(value, field_where)
        elif key in (
            "datatype_check_threshold",
            "domain_content_threshold",
            "comparison_threshold",
            "categorical_comparison_threshold",
        ):
            changes[key] = _number(value, field_where)
        elif key == "comparison_method":
            changes[key] = _choice(value, COMPARISON_METHODS, field_where)
        elif key == "categorical_drift_method":
            changes[key] = _choice(value, CATEGORICAL_DRIFT_METHODS, field_where)
        # other keys (e.g. Model Monitor extensions) are carried in the file but do not affect the checks
    return replace(config, **changes)


def _enabled(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("Enabled", "Disabled"):
        return value == "Enabled"
    raise ConstraintsError(f"{where} = {value!r}: use \"Enabled\" or \"Disabled\"")


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConstraintsError(f"{where} = {value!r}: use a non-negative number such as 0.1")
    return float(value)


def _choice(value: Any, choices: tuple[str, ...], where: str) -> str:
    if value not in choices:
        raise ConstraintsError(f"{where} = {value!r}: use one of {', '.join(choices)}")
    return str(value)
