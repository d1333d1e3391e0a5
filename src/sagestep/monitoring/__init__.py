"""Data-quality monitoring in SageMaker Model Monitor's formats: baselines, checks, drift, metrics, ground truth.

No AWS calls at import time; the CloudWatch client for `put_metric_data` is passed in. Names are imported lazily,
so `sagestep.monitoring.merge` (the ground-truth merge Lambda) loads without numpy, pandas or scipy.

Modules: `kll` (sketch), `statistics` (statistics.json), `constraints` (constraints.json), `data_quality` (checks),
`drift` (distances, PSI), `readers` (CSV/Parquet/capture input), `metrics_emf` (CloudWatch), `merge` (ground truth),
`baseline` (baseline documents for a dataset config), `merged` (merged capture + ground truth), `model_quality`
(model-quality statistics and violations), `bias_drift` (bias and attribution drift), `summary` (summary.json).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BaselineInputError": "baseline",
    "BiasInputError": "bias_drift",
    "BiasThresholds": "bias_drift",
    "attribution_drift": "bias_drift",
    "bias_drift": "bias_drift",
    "ndcg": "bias_drift",
    "run_bias_attribution": "bias_drift",
    "MergedData": "merged",
    "read_merged": "merged",
    "ModelQualityInputError": "model_quality",
    "constraint_violations": "model_quality",
    "run_model_quality": "model_quality",
    "summary": "summary",
    "build_baseline": "baseline",
    "DEFAULT_MONITORING_CONFIG": "constraints",
    "ConstraintsError": "constraints",
    "FeatureConfig": "constraints",
    "feature_config": "constraints",
    "suggest_constraints": "constraints",
    "CHECK_TYPES": "data_quality",
    "DataQualityResult": "data_quality",
    "StatisticsFormatError": "data_quality",
    "check_data_quality": "data_quality",
    "run_data_quality": "data_quality",
    "categorical_l_infinity": "drift",
    "chi_squared_p_value": "drift",
    "numeric_l_infinity": "drift",
    "numeric_psi": "drift",
    "robust_distance": "drift",
    "KLLSketch": "kll",
    "SketchFormatError": "kll",
    "MergeInputError": "merge",
    "MergeReport": "merge",
    "PendingState": "merge",
    "load_pending_state": "merge",
    "merge_ground_truth": "merge",
    "merge_window": "merge",
    "parse_iso_duration": "merge",
    "emf_records": "metrics_emf",
    "metric_data": "metrics_emf",
    "put_metric_data": "metrics_emf",
    "DataInputError": "readers",
    "ReadReport": "readers",
    "iter_chunks": "readers",
    "read_dataset": "readers",
    "StatisticsBuilder": "statistics",
    "compute_statistics": "statistics",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
