"""Data-quality checks of current data against a baseline, in Model Monitor's violation format.

Six check types, evaluated per baseline feature in constraints order (extra columns last):
`missing_column_check`, `data_type_check`, `completeness_check`, `categorical_values_check`,
`baseline_drift_check` (numeric L-infinity on KLL sketches, Simple or Robust; categorical L-infinity or
chi-squared) and `extra_column_check`. PSI per feature goes to a separate drift report.

`is_non_negative` is suggested in constraints for compatibility but, as in Model Monitor's violation schema, has no
check type of its own and is not evaluated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from sagestep.monitoring import drift
from sagestep.monitoring.constraints import FeatureConfig, constraint_features, feature_config
from sagestep.monitoring.kll import KLLSketch
from sagestep.monitoring.statistics import STATISTICS_VERSION, StatisticsBuilder, TypeCounts, build_profile

CHECK_TYPES = (
    "data_type_check",
    "completeness_check",
    "baseline_drift_check",
    "missing_column_check",
    "extra_column_check",
    "categorical_values_check",
)
_EPS = 1e-12


class StatisticsFormatError(ValueError):
    """A statistics document that is not in Model Monitor's statistics.json shape."""


@dataclass
class FeatureSummary:
    """What the checks read about one feature, from a fresh profile or from a statistics.json entry."""

    name: str
    kind: str | None  # "numeric", "string" or None (no distribution block)
    inferred_type: str
    num_present: int
    num_missing: int
    types: TypeCounts | None = None
    sketch: KLLSketch | None = None
    value_counts: Mapping[str, int] | None = None

    @property
    def completeness(self) -> float:
        total = self.num_present + self.num_missing
        return self.num_present / total if total else 0.0


@dataclass(frozen=True)
class DataQualityResult:
    statistics: dict[str, Any]
    violations: dict[str, Any]
    drift_report: dict[str, Any]

    @property
    def violation_list(self) -> list[dict[str, str]]:
        return list(self.violations["violations"])


def check_data_quality(
    current: pd.DataFrame | Iterable[pd.DataFrame] | Mapping[str, Any],
    baseline_statistics: Mapping[str, Any],
    baseline_constraints: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(current statistics.json, constraint_violations.json) for current data or current statistics."""
    result = run_data_quality(current, baseline_statistics, baseline_constraints)
    return result.statistics, result.violations


def run_data_quality(
    current: pd.DataFrame | Iterable[pd.DataFrame] | Mapping[str, Any] | StatisticsBuilder,
    baseline_statistics: Mapping[str, Any],
    baseline_constraints: Mapping[str, Any],
    *,
    workers: int | None = None,
) -> DataQualityResult:
    """Statistics, violations and the drift report (L-infinity, Robust distance, PSI per feature)."""
    features = constraint_features(baseline_constraints)
    baseline = summaries_from_statistics(baseline_statistics, "baseline statistics")
    if isinstance(current, Mapping):
        statistics = dict(current)
        summaries = summaries_from_statistics(statistics, "current statistics")
    else:
        builder = current if isinstance(current, StatisticsBuilder) else build_profile(
            current, expected_feature_types(baseline_constraints), workers=workers
        )
        statistics = builder.statistics()
        summaries = summaries_from_profile(builder)

    violations: list[dict[str, str]] = []
    report_features: list[dict[str, Any]] = []
    expected_names = [str(f["name"]) for f in features]
    n_current_columns = len(summaries)
    for constraint in features:
        name = str(constraint["name"])
        config = feature_config(baseline_constraints, constraint)
        cur = summaries.get(name)
        if cur is None:
            if config.evaluate_constraints:
                violations.append(
                    _violation(
                        name,
                        "missing_column_check",
                        "There are missing columns in current dataset. Number of columns in current dataset: "
                        f"{n_current_columns}, Number of columns in baseline constraints: {len(features)}",
                    )
                )
            report_features.append(_skipped(name, "column missing from the current data"))
            continue
        entry = _drift_entry(name, baseline.get(name), cur, config)
        report_features.append(entry)
        if not config.evaluate_constraints:
            continue
        violations.extend(_feature_violations(constraint, cur, config, entry))

    for name in summaries:
        if name not in expected_names:
            violations.append(
                _violation(
                    name,
                    "extra_column_check",
                    "There are extra columns in current dataset. Number of columns in current dataset: "
                    f"{n_current_columns}, Number of columns in baseline constraints: {len(features)}",
                )
            )

    drift_report = {
        "version": STATISTICS_VERSION,
        "baseline_item_count": int(baseline_statistics.get("dataset", {}).get("item_count", 0)),
        "current_item_count": int(statistics.get("dataset", {}).get("item_count", 0)),
        "features": report_features,
        "flagged_features": [f["name"] for f in report_features if f.get("flagged")],
    }
    return DataQualityResult(statistics, {"violations": violations}, drift_report)


def expected_feature_types(constraints: Mapping[str, Any]) -> dict[str, str]:
    """How to profile current data so it compares with the baseline: String stays String, numbers stay numeric."""
    types: dict[str, str] = {}
    for feature in constraint_features(constraints):
        inferred = feature.get("inferred_type")
        if inferred == "String":
            types[str(feature["name"])] = "String"
        elif inferred in ("Integral", "Fractional"):
            types[str(feature["name"])] = "Numeric"
    return types


# -- per-feature checks ------------------------------------------------------------------------------------------
def _feature_violations(
    constraint: Mapping[str, Any], cur: FeatureSummary, config: FeatureConfig, drift_entry: Mapping[str, Any]
) -> list[dict[str, str]]:
    name = str(constraint["name"])
    found: list[dict[str, str]] = []
    expected = constraint.get("inferred_type")
    if expected in ("Integral", "Fractional", "String") and cur.num_present > 0:
        observed = _type_match(cur, str(expected))
        if observed < config.datatype_check_threshold - _EPS:
            found.append(
                _violation(
                    name,
                    "data_type_check",
                    f"Data type match requirement is not met. Expected data type: {expected}, Expected match: "
                    f"{_pct(config.datatype_check_threshold)}. Observed: Only {_pct(observed)} of data is {expected}.",
                )
            )
    required = constraint.get("completeness")
    if isinstance(required, (int, float)) and cur.completeness < float(required) - _EPS:
        found.append(
            _violation(
                name,
                "completeness_check",
                f"Data completeness requirement is not met. Expected completeness: {_pct(float(required))}. "
                f"Observed: Only {_pct(cur.completeness)} of data is present.",
            )
        )
    domain = (constraint.get("string_constraints") or {}).get("domains")
    if domain and cur.value_counts is not None and cur.num_present > 0:
        allowed = {str(v) for v in domain}
        in_domain = sum(c for v, c in cur.value_counts.items() if v in allowed)
        observed = in_domain / cur.num_present
        if observed < config.domain_content_threshold - _EPS:
            new_values = sorted((v for v in cur.value_counts if v not in allowed), key=lambda v: -cur.value_counts[v])
            shown = ", ".join(repr(v) for v in new_values[:5]) + (", ..." if len(new_values) > 5 else "")
            found.append(
                _violation(
                    name,
                    "categorical_values_check",
                    f"Categorical values requirement is not met. Expected: {_pct(config.domain_content_threshold)} "
                    f"of values within the baseline domain. Observed: Only {_pct(observed)} of data is within the "
                    f"domain; values outside it: {shown}.",
                )
            )
    if config.perform_comparison and drift_entry.get("flagged"):
        if drift_entry["kind"] == "numerical":
            description = (
                f"Numerical distance: {drift_entry['distance']} exceeds numerical threshold: {drift_entry['threshold']}"
            )
        elif drift_entry["drift_method"] == "ChiSquared":
            description = (
                f"Categorical chi-squared p-value: {drift_entry['chi_squared_p_value']} is below categorical "
                f"threshold: {drift_entry['threshold']}"
            )
        else:
            description = (
                f"Categorical distance: {drift_entry['distance']} exceeds categorical threshold: "
                f"{drift_entry['threshold']}"
            )
        found.append(_violation(name, "baseline_drift_check", description))
    return found


def _type_match(cur: FeatureSummary, expected: str) -> float:
    if cur.types is not None:
        return cur.types.matching(expected) / cur.num_present
    compatible = {
        "Integral": {"Integral"},
        "Fractional": {"Integral", "Fractional"},
        "String": {"Integral", "Fractional", "String"},
    }[expected]
    return 1.0 if cur.inferred_type in compatible else 0.0


def _drift_entry(
    name: str, base: FeatureSummary | None, cur: FeatureSummary, config: FeatureConfig
) -> dict[str, Any]:
    if base is None:
        return _skipped(name, "feature missing from the baseline statistics")
    if base.kind != cur.kind or base.kind is None:
        return _skipped(name, f"baseline is {base.kind or 'unprofiled'}, current is {cur.kind or 'unprofiled'}")
    if base.kind == "numeric":
        if base.sketch is None or cur.sketch is None or base.sketch.n == 0 or cur.sketch.n == 0:
            return _skipped(name, "no numeric values on one side")
        n, m = base.sketch.n, cur.sketch.n
        l_inf = drift.numeric_l_infinity(base.sketch, cur.sketch)
        robust = drift.robust_distance(l_inf, n, m)
        distance = robust if config.comparison_method == "Robust" else l_inf
        psi = drift.numeric_psi(base.sketch, cur.sketch)
        entry = {
            "name": name,
            "kind": "numerical",
            "comparison_method": config.comparison_method,
            "drift_method": "LInfinity",
            "l_infinity": l_inf,
            "robust_distance": robust,
            "distance": distance,
            "threshold": config.comparison_threshold,
            "flagged": config.perform_comparison and distance > config.comparison_threshold,
        }
    else:
        if not base.value_counts or not cur.value_counts:
            return _skipped(name, "no categorical values on one side")
        n, m = sum(base.value_counts.values()), sum(cur.value_counts.values())
        l_inf = drift.categorical_l_infinity(base.value_counts, cur.value_counts)
        robust = drift.robust_distance(l_inf, n, m)
        distance = robust if config.comparison_method == "Robust" else l_inf
        psi = drift.categorical_psi(base.value_counts, cur.value_counts)
        entry = {
            "name": name,
            "kind": "categorical",
            "comparison_method": config.comparison_method,
            "drift_method": config.categorical_drift_method,
            "l_infinity": l_inf,
            "robust_distance": robust,
            "distance": distance,
            "threshold": config.categorical_comparison_threshold,
        }
        if config.categorical_drift_method == "ChiSquared":
            p_value = drift.chi_squared_p_value(base.value_counts, cur.value_counts)
            entry["chi_squared_p_value"] = p_value
            entry["flagged"] = config.perform_comparison and p_value < config.categorical_comparison_threshold
        else:
            entry["flagged"] = config.perform_comparison and distance > config.categorical_comparison_threshold
    entry.update(psi=psi, psi_level=drift.psi_level(psi), baseline_count=n, current_count=m)
    return entry


def _skipped(name: str, reason: str) -> dict[str, Any]:
    return {
        "name": name,
        "kind": None,
        "l_infinity": None,
        "robust_distance": None,
        "distance": None,
        "psi": None,
        "flagged": False,
        "skipped_reason": reason,
    }


def _violation(feature: str, check: str, description: str) -> dict[str, str]:
    return {"feature_name": feature, "constraint_check_type": check, "description": description}


def _pct(fraction: float) -> str:
    return f"{round(fraction * 100, 4)}%"


# -- summaries ---------------------------------------------------------------------------------------------------
def summaries_from_profile(builder: StatisticsBuilder) -> dict[str, FeatureSummary]:
    out: dict[str, FeatureSummary] = {}
    for name, col in builder.columns.items():
        out[name] = FeatureSummary(
            name=name,
            kind=col.kind,
            inferred_type=col.inferred_type,
            num_present=col.num_present,
            num_missing=col.num_missing,
            types=col.types,
            sketch=col.sketch if col.count > 0 else None,
            value_counts=col.value_counts,
        )
    return out


def summaries_from_statistics(statistics: Mapping[str, Any], source: str) -> dict[str, FeatureSummary]:
    """Read a statistics.json document; `source` names it in error messages."""
    features = statistics.get("features") if isinstance(statistics, Mapping) else None
    if not isinstance(features, list):
        raise StatisticsFormatError(f"{source}: 'features' must be a list (Model Monitor statistics.json)")
    out: dict[str, FeatureSummary] = {}
    for i, feature in enumerate(features):
        where = f"{source}: features[{i}]"
        if not isinstance(feature, Mapping) or not isinstance(feature.get("name"), str):
            raise StatisticsFormatError(f"{where} must be an object with a string 'name'")
        name = feature["name"]
        inferred = str(feature.get("inferred_type", "Unknown"))
        num = feature.get("numerical_statistics")
        strings = feature.get("string_statistics")
        block = num if num is not None else strings if strings is not None else {}
        common = block.get("common", {}) if isinstance(block, Mapping) else {}
        try:
            present = int(common.get("num_present", 0))
            missing = int(common.get("num_missing", 0))
        except (TypeError, ValueError) as exc:
            raise StatisticsFormatError(f"{where}.common: num_present/num_missing must be integers") from exc
        summary = FeatureSummary(name, None, inferred, present, missing)
        if num is not None:
            summary.kind = "numeric"
            sketch = num.get("distribution", {}).get("kll", {}).get("sketch")
            if sketch is not None:
                summary.sketch = KLLSketch.from_dict(
                    sketch, where=f"{where} ({name}).numerical_statistics.distribution.kll.sketch"
                )
        elif strings is not None:
            summary.kind = "string"
            buckets = strings.get("distribution", {}).get("categorical", {}).get("buckets", [])
            try:
                summary.value_counts = {str(b["value"]): int(b["count"]) for b in buckets}
            except (KeyError, TypeError, ValueError) as exc:
                raise StatisticsFormatError(
                    f"{where} ({name}).string_statistics.distribution.categorical.buckets: each bucket needs "
                    "'value' and an integer 'count'"
                ) from exc
        out[name] = summary
    return out
