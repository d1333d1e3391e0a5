"""Distribution distances between a baseline and a current sample, from KLL sketches or category counts.

- Numeric L-infinity: the largest gap between the two empirical CDFs, evaluated at every item of either sketch
  with weighted inclusive ranks (the two-sample Kolmogorov-Smirnov statistic, up to sketch error).
- Robust: `max(0, L-inf - 1.8 * sqrt((n + m) / (n * m)))`, the distance left once the gap two samples of these
  sizes show about 0.3% of the time without any drift is taken off.
- Categorical: L-infinity over category frequencies (same correction), or a chi-squared test of homogeneity.
- PSI over 10 bins cut at the baseline deciles (numeric) or over categories, proportions floored at 1e-4.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from scipy import stats as scipy_stats

from sagestep.monitoring.kll import KLLSketch

ROBUST_COEFFICIENT = 1.8
PSI_BINS = 10
PSI_FLOOR = 1e-4
PSI_MINOR = 0.1
PSI_MAJOR = 0.25


def numeric_l_infinity(baseline: KLLSketch, current: KLLSketch) -> float:
    """sup |F_baseline(x) - F_current(x)| over the items of both sketches."""
    if baseline.n == 0 or current.n == 0:
        raise ValueError("L-infinity distance needs two non-empty sketches")
    items_a, _ = baseline.weighted_items()
    items_b, _ = current.weighted_items()
    points = np.concatenate([items_a, items_b])
    return float(np.max(np.abs(baseline.cdf(points) - current.cdf(points))))


def robust_distance(distance: float, n: int, m: int) -> float:
    """The distance minus the noise allowance for samples of n and m items, floored at zero."""
    if n <= 0 or m <= 0:
        return 0.0
    return max(0.0, distance - ROBUST_COEFFICIENT * math.sqrt((n + m) / (n * m)))


def _aligned(baseline: Mapping[str, float], current: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
    keys = sorted(set(baseline) | set(current))
    a = np.array([float(baseline.get(k, 0.0)) for k in keys])
    b = np.array([float(current.get(k, 0.0)) for k in keys])
    return a, b


def categorical_l_infinity(baseline: Mapping[str, float], current: Mapping[str, float]) -> float:
    """max over categories of |p_baseline - p_current|."""
    a, b = _aligned(baseline, current)
    if a.sum() <= 0 or b.sum() <= 0:
        raise ValueError("categorical L-infinity distance needs two non-empty count tables")
    return float(np.max(np.abs(a / a.sum() - b / b.sum())))


def chi_squared_p_value(baseline: Mapping[str, float], current: Mapping[str, float]) -> float:
    """p-value of the chi-squared test that both count tables come from one distribution (1.0 if one category)."""
    a, b = _aligned(baseline, current)
    keep = (a + b) > 0
    table = np.vstack([a[keep], b[keep]])
    if table.shape[1] < 2 or a.sum() <= 0 or b.sum() <= 0:
        return 1.0
    return float(scipy_stats.chi2_contingency(table, correction=False).pvalue)


def _psi(expected: np.ndarray, actual: np.ndarray) -> float:
    e = np.maximum(expected, PSI_FLOOR)
    a = np.maximum(actual, PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def numeric_psi(baseline: KLLSketch, current: KLLSketch, bins: int = PSI_BINS) -> float:
    """PSI over bins cut at the baseline quantiles 1/bins .. (bins-1)/bins (duplicate cuts merged)."""
    edges = np.unique(baseline.quantile(np.arange(1, bins) / bins))
    cuts = np.concatenate([[0.0], baseline.cdf(edges), [1.0]])
    expected = np.diff(cuts)
    cur = np.concatenate([[0.0], current.cdf(edges), [1.0]])
    actual = np.diff(cur)
    return _psi(expected, actual)


def categorical_psi(baseline: Mapping[str, float], current: Mapping[str, float]) -> float:
    a, b = _aligned(baseline, current)
    if a.sum() <= 0 or b.sum() <= 0:
        raise ValueError("PSI needs two non-empty count tables")
    return _psi(a / a.sum(), b / b.sum())


def psi_level(psi: float) -> str:
    """none (< 0.1), minor (0.1 - 0.25) or major (>= 0.25), the usual reading of PSI."""
    if psi >= PSI_MAJOR:
        return "major"
    if psi >= PSI_MINOR:
        return "minor"
    return "none"
