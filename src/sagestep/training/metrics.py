"""Model-quality metrics in the SageMaker Model Monitor format, plus credit metrics and calibration.

`binary_classification_statistics` and `regression_statistics` write the model-quality statistics document
(`{"version": 0.0, "dataset": {"item_count": N}, "binary_classification_metrics": {...}}`);
`model_quality_constraints` derives the constraints document monitoring compares against.

Conventions (as in Model Monitor): label 1 is the positive class; a row is predicted positive when its score is
at or above the threshold; `standard_deviation` is the standard deviation of the metric over 5 random 80%
subsamples, the string "NaN" below 200 rows; `*_best_constant_classifier` is the metric of the constant
classifier that predicts the positive class for every row (auc: 0.5).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_auc_score, roc_curve

FORMAT_VERSION = 0.0
MIN_ROWS_FOR_STD = 200
N_SUBSAMPLES = 5
SUBSAMPLE_FRACTION = 0.8
MAX_CURVE_POINTS = 201
NAN = "NaN"

BINARY_METRICS = (
    "accuracy", "precision", "recall", "f0_5", "f1", "f2", "auc",
    "true_positive_rate", "true_negative_rate", "false_positive_rate", "false_negative_rate",
)
# Metrics where a lower value is better: their constraints use GreaterThanThreshold.
LOWER_IS_BETTER = frozenset({"false_positive_rate", "false_negative_rate", "mae", "mse", "rmse"})
REGRESSION_METRICS = ("mae", "mse", "rmse", "r2")

Array = np.ndarray


def _as_arrays(y_true: Iterable[float], y_score: Iterable[float]) -> tuple[Array, Array]:
    y = np.asarray(y_true, dtype=np.float64).ravel()
    s = np.asarray(y_score, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length ({y.size} vs {s.size})")
    if y.size == 0:
        raise ValueError("no rows to evaluate")
    if np.isnan(y).any() or np.isnan(s).any():
        raise ValueError("labels and scores must not be missing; drop rows without ground truth first")
    return y, s


def _safe_div(num: float, den: float) -> float:
    return float(num / den) if den else 0.0


def _f_beta(precision: float, recall: float, beta: float) -> float:
    b2 = beta * beta
    den = b2 * precision + recall
    return float((1 + b2) * precision * recall / den) if den else 0.0


def confusion_counts(y_true: Array, y_pred: Array) -> dict[str, int]:
    y_true = y_true.astype(bool)
    y_pred = y_pred.astype(bool)
    return {
        "tp": int(np.sum(y_true & y_pred)),
        "fp": int(np.sum(~y_true & y_pred)),
        "tn": int(np.sum(~y_true & ~y_pred)),
        "fn": int(np.sum(y_true & ~y_pred)),
    }


def _metrics_from_counts(c: Mapping[str, int]) -> dict[str, float]:
    tp, fp, tn, fn = c["tp"], c["fp"], c["tn"], c["fn"]
    precision = _safe_div(tp, tp + fp)
    recall = _safe_div(tp, tp + fn)
    return {
        "accuracy": _safe_div(tp + tn, tp + fp + tn + fn),
        "precision": precision,
        "recall": recall,
        "f0_5": _f_beta(precision, recall, 0.5),
        "f1": _f_beta(precision, recall, 1.0),
        "f2": _f_beta(precision, recall, 2.0),
        "true_positive_rate": recall,
        "true_negative_rate": _safe_div(tn, tn + fp),
        "false_positive_rate": _safe_div(fp, fp + tn),
        "false_negative_rate": _safe_div(fn, fn + tp),
    }


def _auc(y: Array, s: Array) -> float:
    return float(roc_auc_score(y, s)) if 0 < y.sum() < y.size else math.nan


def binary_point_metrics(y_true: Iterable[float], y_score: Iterable[float], threshold: float) -> dict[str, float]:
    """Scalar binary metrics at `threshold` (auc from the scores); no standard deviations."""
    y, s = _as_arrays(y_true, y_score)
    out = _metrics_from_counts(confusion_counts(y, s >= threshold))
    out["auc"] = _auc(y, s)
    return {k: out[k] for k in BINARY_METRICS}


def _subsample_std(
    n: int, compute: Callable[[Array], Mapping[str, float]], names: Sequence[str], seed: int
) -> dict[str, float | str]:
    if n < MIN_ROWS_FOR_STD:
        return {k: NAN for k in names}
    rng = np.random.default_rng(seed)
    size = int(round(n * SUBSAMPLE_FRACTION))
    draws = [compute(rng.choice(n, size=size, replace=False)) for _ in range(N_SUBSAMPLES)]
    out: dict[str, float | str] = {}
    for k in names:
        values = np.array([d[k] for d in draws], dtype=np.float64)
        out[k] = NAN if np.isnan(values).any() else float(np.std(values, ddof=1))
    return out


def _json_number(value: float) -> float | str:
    return NAN if value is None or (isinstance(value, float) and not math.isfinite(value)) else float(value)


def _downsample(*arrays: Array, max_points: int = MAX_CURVE_POINTS) -> list[list[float]]:
    n = arrays[0].size
    idx = np.unique(np.linspace(0, n - 1, min(n, max_points)).round().astype(int)) if n else np.array([], int)
    return [[round(float(v), 6) for v in a[idx]] for a in arrays]


def binary_classification_statistics(
    y_true: Iterable[float], y_score: Iterable[float], threshold: float, *, seed: int = 0
) -> dict[str, Any]:
    """The model-quality statistics document for a binary classifier (Model Monitor format)."""
    y, s = _as_arrays(y_true, y_score)
    n = y.size
    counts = confusion_counts(y, s >= threshold)
    values = _metrics_from_counts(counts)
    values["auc"] = _auc(y, s)

    def compute(idx: Array) -> dict[str, float]:
        m = _metrics_from_counts(confusion_counts(y[idx], s[idx] >= threshold))
        m["auc"] = _auc(y[idx], s[idx])
        return m

    std = _subsample_std(n, compute, BINARY_METRICS, seed)

    # The constant classifier that predicts positive for every row.
    positives = int(y.sum())
    constant = _metrics_from_counts({"tp": positives, "fp": n - positives, "tn": 0, "fn": 0})
    constant["auc"] = 0.5
    std_constant = _subsample_std(
        n,
        lambda idx: {**_metrics_from_counts(
            {"tp": int(y[idx].sum()), "fp": idx.size - int(y[idx].sum()), "tn": 0, "fn": 0}), "auc": 0.5},
        BINARY_METRICS,
        seed + 1,
    )

    metrics: dict[str, Any] = {
        "confusion_matrix": {
            "0": {"0": counts["tn"], "1": counts["fp"]},
            "1": {"0": counts["fn"], "1": counts["tp"]},
        }
    }
    for k in BINARY_METRICS:
        metrics[k] = {"value": _json_number(values[k]), "standard_deviation": std[k]}
        metrics[f"{k}_best_constant_classifier"] = {
            "value": _json_number(constant[k]), "standard_deviation": std_constant[k]}
    if 0 < positives < n:
        fpr, tpr, _ = roc_curve(y, s)
        precision, recall, _ = precision_recall_curve(y, s)
        fpr_l, tpr_l = _downsample(fpr, tpr)
        prec_l, rec_l = _downsample(precision[::-1], recall[::-1])
        metrics["receiver_operating_characteristic_curve"] = {
            "false_positive_rates": fpr_l, "true_positive_rates": tpr_l}
        metrics["precision_recall_curve"] = {"precisions": prec_l, "recalls": rec_l}
    return {"version": FORMAT_VERSION, "dataset": {"item_count": int(n)}, "binary_classification_metrics": metrics}


def regression_statistics(y_true: Iterable[float], y_pred: Iterable[float], *, seed: int = 0) -> dict[str, Any]:
    """The model-quality statistics document for a regression model (mae, mse, rmse, r2)."""
    y, p = _as_arrays(y_true, y_pred)

    def compute(idx: Array) -> dict[str, float]:
        err = y[idx] - p[idx]
        mse = float(np.mean(err * err))
        ss_tot = float(np.sum((y[idx] - y[idx].mean()) ** 2))
        r2 = 1.0 - float(np.sum(err * err)) / ss_tot if ss_tot else math.nan
        return {"mae": float(np.mean(np.abs(err))), "mse": mse, "rmse": math.sqrt(mse), "r2": r2}

    values = compute(np.arange(y.size))
    std = _subsample_std(y.size, compute, REGRESSION_METRICS, seed)
    return {
        "version": FORMAT_VERSION,
        "dataset": {"item_count": int(y.size)},
        "regression_metrics": {
            k: {"value": _json_number(values[k]), "standard_deviation": std[k]} for k in REGRESSION_METRICS
        },
    }


def naive_seasonal_forecast(rows: Any, known: Any, config: Any) -> Array:
    """The naive seasonal forecast of each row: the target `config.thresholds.naive_lag_days` days before the row's
    event time, looked up in `known` (prepared rows, e.g. every split); NaN where that day is not known."""
    import pandas as pd

    column, lag = config.event_time_column, config.thresholds.naive_lag_days
    if column is None:
        return np.full(len(rows), np.nan)
    days = pd.to_datetime(known[column], errors="coerce").dt.normalize()
    by_day = pd.Series(known[config.target].to_numpy(dtype=np.float64), index=days)
    by_day = by_day[~by_day.index.isna()].groupby(level=0).mean()
    wanted = pd.to_datetime(rows[column], errors="coerce").dt.normalize() - pd.Timedelta(days=lag)
    return by_day.reindex(wanted.to_numpy()).to_numpy(dtype=np.float64)


def regression_extras(y_true: Iterable[float], y_pred: Iterable[float], naive: Iterable[float]) -> dict[str, Any]:
    """MAPE (over rows whose target is not 0; None when none is) and the naive forecast's errors, on the rows it
    covers, beside the model's on the same rows: `error_ratio_to_naive` = model RMSE ÷ naive RMSE there."""
    y, p = _as_arrays(y_true, y_pred)
    n = np.asarray(naive, dtype=np.float64).ravel()
    nonzero = y != 0
    mape = float(np.mean(np.abs((y[nonzero] - p[nonzero]) / y[nonzero]))) if nonzero.any() else None
    covered = ~np.isnan(n)
    out: dict[str, Any] = {"mape": mape, "mape_rows": int(nonzero.sum()), "naive_rows": int(covered.sum()),
                           "naive_rmse": None, "naive_mae": None, "rmse_on_naive_rows": None,
                           "error_ratio_to_naive": None}
    if covered.any():
        naive_rmse = float(np.sqrt(np.mean((y[covered] - n[covered]) ** 2)))
        model_rmse = float(np.sqrt(np.mean((y[covered] - p[covered]) ** 2)))
        out.update(naive_rmse=naive_rmse, naive_mae=float(np.mean(np.abs(y[covered] - n[covered]))),
                   rmse_on_naive_rows=model_rmse,
                   error_ratio_to_naive=model_rmse / naive_rmse if naive_rmse else None)
    return out


# --------------------------------------------------------------------------------------------- credit metrics


def ks_statistic(y_true: Iterable[float], y_score: Iterable[float]) -> float:
    """Kolmogorov–Smirnov: the largest gap between the score distributions of the two classes (max TPR − FPR)."""
    y, s = _as_arrays(y_true, y_score)
    fpr, tpr, _ = roc_curve(y, s)
    return float(np.max(tpr - fpr))


def gini(y_true: Iterable[float], y_score: Iterable[float]) -> float:
    """Gini (accuracy ratio) = 2·AUC − 1."""
    y, s = _as_arrays(y_true, y_score)
    return 2.0 * _auc(y, s) - 1.0


def brier_score(y_true: Iterable[float], y_score: Iterable[float]) -> float:
    y, s = _as_arrays(y_true, y_score)
    return float(np.mean((s - y) ** 2))


def calibration(y_true: Iterable[float], y_score: Iterable[float], n_bins: int = 10) -> dict[str, Any]:
    """Reliability table over score quantile bins (about equal counts): mean score vs observed positive rate,
    with the Brier score and the expected calibration error (count-weighted |mean score − observed rate|)."""
    y, s = _as_arrays(y_true, y_score)
    edges = np.unique(np.quantile(s, np.linspace(0, 1, n_bins + 1)))
    bins = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, max(len(edges) - 2, 0))
    table, ece = [], 0.0
    for b in range(max(len(edges) - 1, 1)):
        mask = bins == b
        count = int(mask.sum())
        if not count:
            continue
        mean_score, observed = float(s[mask].mean()), float(y[mask].mean())
        ece += count / y.size * abs(mean_score - observed)
        table.append({
            "lower": float(edges[b]), "upper": float(edges[min(b + 1, len(edges) - 1)]), "count": count,
            "mean_score": mean_score, "observed_rate": observed,
        })
    return {"strategy": "quantile", "n_bins": len(table), "bins": table, "brier_score": brier_score(y, s),
            "expected_calibration_error": float(ece)}


def credit_metrics(y_true: Iterable[float], y_score: Iterable[float]) -> dict[str, float]:
    y, s = _as_arrays(y_true, y_score)
    return {"ks": ks_statistic(y, s), "gini": gini(y, s), "brier": brier_score(y, s)}


# --------------------------------------------------------------------------------------------- constraints


def model_quality_constraints(
    statistics: Mapping[str, Any],
    *,
    thresholds: Mapping[str, float] | None = None,
    metrics: Sequence[str] | None = None,
    std_multiplier: float | None = None,
) -> dict[str, Any]:
    """The model-quality constraints document derived from a statistics document.

    For each metric (default: every scalar metric present) the threshold is `thresholds[metric]` when given,
    else the baseline value, widened by `std_multiplier` standard deviations when set and known. Higher-is-better
    metrics get `LessThanThreshold` (violation when the metric falls below), error-like ones
    `GreaterThanThreshold`.
    """
    if "binary_classification_metrics" in statistics:
        section, out_key = statistics["binary_classification_metrics"], "binary_classification_constraints"
        default_names: Sequence[str] = BINARY_METRICS
    elif "regression_metrics" in statistics:
        section, out_key = statistics["regression_metrics"], "regression_constraints"
        default_names = REGRESSION_METRICS
    else:
        raise ValueError("statistics has neither binary_classification_metrics nor regression_metrics")
    thresholds = dict(thresholds or {})
    names = list(metrics) if metrics is not None else [n for n in default_names if n in section]
    unknown = [n for n in (*names, *thresholds) if n not in section]
    if unknown:
        raise ValueError(f"metric {unknown[0]!r} is not in the statistics; known: {sorted(k for k in section if isinstance(section[k], dict) and 'value' in section[k])}")
    constraints: dict[str, Any] = {}
    for name in dict.fromkeys([*names, *thresholds]):
        lower_better = name in LOWER_IS_BETTER
        if name in thresholds:
            threshold = float(thresholds[name])
        else:
            value = section[name]["value"]
            if value == NAN:
                continue
            threshold = float(value)
            std = section[name].get("standard_deviation")
            if std_multiplier is not None and isinstance(std, int | float):
                threshold += std_multiplier * std if lower_better else -std_multiplier * std
        constraints[name] = {
            "threshold": threshold,
            "comparison_operator": "GreaterThanThreshold" if lower_better else "LessThanThreshold",
        }
    return {"version": FORMAT_VERSION, out_key: constraints}
