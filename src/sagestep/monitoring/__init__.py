"""Data-quality monitoring in SageMaker Model Monitor's formats: baselines, checks, drift, metrics, ground truth.

No AWS calls at import time; the CloudWatch client for `put_metric_data` is passed in.
"""

from sagestep.monitoring.baseline import BaselineInputError, build_baseline
from sagestep.monitoring.constraints import (
    DEFAULT_MONITORING_CONFIG,
    ConstraintsError,
    FeatureConfig,
    feature_config,
    suggest_constraints,
)
from sagestep.monitoring.data_quality import (
    CHECK_TYPES,
    DataQualityResult,
    StatisticsFormatError,
    check_data_quality,
    run_data_quality,
)
from sagestep.monitoring.drift import (
    categorical_l_infinity,
    chi_squared_p_value,
    numeric_l_infinity,
    numeric_psi,
    robust_distance,
)
from sagestep.monitoring.kll import KLLSketch, SketchFormatError
from sagestep.monitoring.merge import (
    MergeInputError,
    MergeReport,
    PendingState,
    load_pending_state,
    merge_ground_truth,
    merge_window,
    parse_iso_duration,
)
from sagestep.monitoring.metrics_emf import emf_records, metric_data, put_metric_data
from sagestep.monitoring.readers import DataInputError, ReadReport, iter_chunks, read_dataset
from sagestep.monitoring.statistics import StatisticsBuilder, compute_statistics

__all__ = [
    "CHECK_TYPES",
    "DEFAULT_MONITORING_CONFIG",
    "BaselineInputError",
    "ConstraintsError",
    "DataInputError",
    "DataQualityResult",
    "FeatureConfig",
    "KLLSketch",
    "MergeInputError",
    "MergeReport",
    "PendingState",
    "ReadReport",
    "SketchFormatError",
    "StatisticsBuilder",
    "StatisticsFormatError",
    "build_baseline",
    "categorical_l_infinity",
    "check_data_quality",
    "chi_squared_p_value",
    "compute_statistics",
    "emf_records",
    "feature_config",
    "iter_chunks",
    "load_pending_state",
    "merge_ground_truth",
    "merge_window",
    "metric_data",
    "numeric_l_infinity",
    "numeric_psi",
    "parse_iso_duration",
    "put_metric_data",
    "read_dataset",
    "robust_distance",
    "run_data_quality",
    "suggest_constraints",
]
