"""Bias drift and feature-attribution drift of live traffic against the training baseline.

Bias drift, per protected attribute of the dataset config, on merged traffic (decision: approve when score < the
threshold, as in `sagestep.fairness`): disparate impact (DI) and statistical parity difference (SPD). A
`bias_drift_check` violation when
- DI leaves the baseline's `disparate_impact_bounds` (four-fifths rule, [0.8, 1.25] by default), or
- DI moved from the baseline's by more than `di_tolerance` (default 0.1), or
- SPD moved from the baseline's by more than `spd_tolerance` (default 0.1).
Attributes whose smaller group has fewer than `min_group_rows` rows are reported, not judged.

Attribution drift, as SageMaker Clarify: mean |SHAP| per feature of live traffic (the booster's TreeSHAP) against
the baseline explainability.json; NDCG = DCG / iDCG with DCG = Σ a(F'ᵢ)/log2(i+1), iDCG = Σ a(Fᵢ)/log2(i+1), a the
baseline attributions, F the baseline ranking and F' the live one. `feature_attribution_drift_check` violation when
NDCG < `ndcg_threshold` (Clarify's default 0.90).

Violations use Clarify's shape: `{"facet", "facet_value", "metric_name", "constraint_check_type", "description"}`
(bias) and `{"feature", "constraint_check_type", "description"}` (attribution).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sagestep.training.config import DatasetConfig
from sagestep.training.explain import summarize_contributions
from sagestep.training.fairness import attribute_report
from sagestep.training.model import ScoringModel

REPORT_VERSION = 1
DEFAULT_DI_TOLERANCE = 0.1
DEFAULT_SPD_TOLERANCE = 0.1
DEFAULT_NDCG_THRESHOLD = 0.90
DEFAULT_MIN_GROUP_ROWS = 30
EXPLAIN_MAX_ROWS = 5000


class BiasInputError(ValueError):
    """Bad baseline documents; the message names the file, the field and the fix."""


@dataclass(frozen=True)
class BiasThresholds:
    di_tolerance: float = DEFAULT_DI_TOLERANCE
    spd_tolerance: float = DEFAULT_SPD_TOLERANCE
    ndcg_threshold: float = DEFAULT_NDCG_THRESHOLD
    min_group_rows: int = DEFAULT_MIN_GROUP_ROWS


def _baseline_attributes(baseline_bias: Mapping[str, Any], source: str) -> dict[str, Mapping[str, Any]]:
    attrs = baseline_bias.get("attributes")
    if not isinstance(attrs, list):
        raise BiasInputError(f"{source}: field 'attributes' is missing; use the bias.json ml/evaluate.py writes")
    return {str(a.get("name")): a for a in attrs if isinstance(a, Mapping)}


def bias_drift(
    features: pd.DataFrame, labels: np.ndarray, scores: np.ndarray, config: DatasetConfig,
    baseline_bias: Mapping[str, Any], *, threshold: float | None = None, thresholds: BiasThresholds = BiasThresholds(),
    source: str = "bias.json",
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """(per-attribute report rows, violations) of the merged traffic against the baseline bias.json."""
    baseline = _baseline_attributes(baseline_bias, source)
    if threshold is None:
        threshold = float(baseline_bias.get("decision_threshold", config.thresholds.decision_threshold))
    bounds = tuple(baseline_bias.get("disparate_impact_bounds") or config.thresholds.disparate_impact)
    y = np.asarray(labels, dtype=np.int64)
    approved = (np.asarray(scores, dtype=np.float64) < threshold).astype(np.float64)
    rows: list[dict[str, Any]] = []
    violations: list[dict[str, str]] = []
    for attr in config.protected_attributes:
        if attr.name not in features.columns:  # e.g. kept out of the model on purpose: measured at training only
            rows.append({"name": attr.name, "judged": False,
                         "reason": f"{attr.name} is not a model input, so the capture does not hold it (bias drift is "
                                   f"measured on captured traffic; its training-time fairness is in bias.json)"})
            continue
        current = attribute_report(attr, features[attr.name], y, approved, bounds)  # type: ignore[arg-type]
        base = baseline.get(attr.name, {})
        row: dict[str, Any] = {
            "name": attr.name,
            "facet_value": current["privileged_group"],
            "n_privileged": current["n_privileged"],
            "n_unprivileged": current["n_unprivileged"],
            "disparate_impact": current["disparate_impact"],
            "statistical_parity_difference": current["statistical_parity_difference"],
            "baseline_disparate_impact": base.get("disparate_impact"),
            "baseline_statistical_parity_difference": base.get("statistical_parity_difference"),
            "judged": True,
        }
        if min(current["n_privileged"], current["n_unprivileged"]) < thresholds.min_group_rows:
            row.update(judged=False, reason=f"a group has fewer than {thresholds.min_group_rows} rows")
            rows.append(row)
            continue
        rows.append(row)
        di, spd = current["disparate_impact"], current["statistical_parity_difference"]
        base_di, base_spd = base.get("disparate_impact"), base.get("statistical_parity_difference")

        def add(metric: str, description: str) -> None:
            violations.append({"facet": attr.name, "facet_value": row["facet_value"], "metric_name": metric,
                               "constraint_check_type": "bias_drift_check", "description": description})

        if di is not None and not bounds[0] <= di <= bounds[1]:
            add("DI", f"Value {di:.4f} is outside the bounds [{bounds[0]}, {bounds[1]}]")
        elif di is not None and isinstance(base_di, int | float) and abs(di - base_di) > thresholds.di_tolerance:
            add("DI", f"Value {di:.4f} moved {abs(di - base_di):.4f} from the baseline {base_di:.4f} "
                      f"(tolerance {thresholds.di_tolerance})")
        if spd is not None and isinstance(base_spd, int | float) and abs(spd - base_spd) > thresholds.spd_tolerance:
            add("SPD", f"Value {spd:.4f} moved {abs(spd - base_spd):.4f} from the baseline {base_spd:.4f} "
                       f"(tolerance {thresholds.spd_tolerance})")
    return rows, violations


def ndcg(baseline: Mapping[str, float], current: Mapping[str, float]) -> float:
    """Clarify's NDCG of the live ranking against the baseline attributions (1.0 = same order)."""
    names = [n for n in baseline if n in current]
    if not names:
        return math.nan
    ideal = sorted(names, key=lambda n: (-baseline[n], n))
    live = sorted(names, key=lambda n: (-current[n], n))
    discounts = [1.0 / math.log2(i + 2) for i in range(len(names))]
    idcg = sum(baseline[n] * d for n, d in zip(ideal, discounts))
    dcg = sum(baseline[n] * d for n, d in zip(live, discounts))
    return dcg / idcg if idcg > 0 else math.nan


def attribution_drift(
    model: ScoringModel, features: pd.DataFrame, baseline_explainability: Mapping[str, Any], *,
    thresholds: BiasThresholds = BiasThresholds(), source: str = "explainability.json", seed: int = 0,
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """(report, violations): global mean |SHAP| of the traffic vs the baseline's, NDCG."""
    base = baseline_explainability.get("global_shap_values")
    if not isinstance(base, Mapping) or not base:
        raise BiasInputError(f"{source}: field 'global_shap_values' is missing; use the explainability.json "
                             f"ml/evaluate.py writes")
    data = features.loc[:, list(model.features)]
    if len(data) > EXPLAIN_MAX_ROWS:
        data = data.sample(n=EXPLAIN_MAX_ROWS, random_state=seed)
    current = summarize_contributions(model.contributions(data), model.algorithm)
    live = current["global_shap_values"]
    score = ndcg({k: float(v) for k, v in base.items()}, live)
    report = {
        "ndcg": score,
        "threshold": thresholds.ndcg_threshold,
        "n_rows": current["n_rows"],
        "baseline_ranking": sorted(base, key=lambda n: (-float(base[n]), n)),
        "ranking": current["ranking"],
        "global_shap_values": live,
        "baseline_global_shap_values": dict(base),
    }
    violations = []
    if math.isfinite(score) and score < thresholds.ndcg_threshold:
        top = [n for n, b in zip(report["ranking"], report["baseline_ranking"]) if n != b][:3]
        violations.append({
            "feature": ", ".join(top) if top else "",
            "constraint_check_type": "feature_attribution_drift_check",
            "description": f"Feature attribution drift {score:.4f} is below the threshold {thresholds.ndcg_threshold}",
        })
    return report, violations


def run_bias_attribution(
    features: pd.DataFrame, labels: np.ndarray, scores: np.ndarray, config: DatasetConfig,
    baseline_bias: Mapping[str, Any], baseline_explainability: Mapping[str, Any], model: ScoringModel | None, *,
    threshold: float | None = None, thresholds: BiasThresholds = BiasThresholds(),
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(report, constraint_violations.json) of both checks; an empty window gives no violations."""
    _baseline_attributes(baseline_bias, "bias.json")
    if len(features) == 0:
        report = {"version": REPORT_VERSION, "n_rows": 0, "bias_drift": [], "attribution_drift": None}
        return report, {"version": "1.0", "violations": []}
    rows, bias_violations = bias_drift(features, labels, scores, config, baseline_bias, threshold=threshold,
                                       thresholds=thresholds)
    attribution = None
    attribution_violations: list[dict[str, str]] = []
    if model is not None:
        attribution, attribution_violations = attribution_drift(model, features, baseline_explainability,
                                                                thresholds=thresholds)
    report = {"version": REPORT_VERSION, "n_rows": int(len(features)), "bias_drift": rows,
              "attribution_drift": attribution}
    return report, {"version": "1.0", "violations": [*bias_violations, *attribution_violations]}


def flagged(violations: Sequence[Mapping[str, Any]]) -> list[str]:
    out: list[str] = []
    for v in violations:
        for name in str(v.get("facet") or v.get("feature") or "").split(", "):
            if name and name not in out:
                out.append(name)
    return out
