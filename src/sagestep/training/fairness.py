"""Group fairness of the decision (approve when the score is below the threshold) per protected attribute.

Per attribute (groups from the config's `privileged` selector; rows with a missing value excluded and counted):
- disparate impact DI = P(approved | unprivileged) / P(approved | privileged) — the four-fifths rule wants it in
  [0.8, 1.25];
- statistical parity difference SPD = P(approved | unprivileged) − P(approved | privileged);
- equal opportunity difference EOD = P(approved | good, unprivileged) − P(approved | good, privileged), "good"
  being the rows whose true label is not the positive (bad) label.
Undefined ratios (an empty group, no approval among the privileged) are reported as null.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from sagestep.training.config import DatasetConfig, ProtectedAttribute
from sagestep.training.model import normalize_categories

REPORT_VERSION = 1


def privileged_mask(values: pd.Series, attribute: ProtectedAttribute) -> pd.Series:
    """True (privileged), False (unprivileged) or NA (missing or not a number for a numeric selector)."""
    group = attribute.privileged
    if group.values is not None:
        keys = normalize_categories(values)
        mask = keys.isin(set(group.values)).astype("boolean")
        return mask.mask(keys.isna())
    numbers = pd.to_numeric(values, errors="coerce")
    mask = pd.Series(True, index=values.index, dtype="boolean")
    if group.min is not None:
        mask &= numbers >= group.min
    if group.max is not None:
        mask &= numbers <= group.max
    return mask.mask(numbers.isna())


def _rate(numerator: np.ndarray, mask: np.ndarray) -> float | None:
    count = int(mask.sum())
    return float(numerator[mask].mean()) if count else None


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den == 0:
        return None
    return num / den


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def attribute_report(
    attribute: ProtectedAttribute,
    values: pd.Series,
    y_true: np.ndarray,
    approved: np.ndarray,
    bounds: tuple[float, float],
) -> dict[str, Any]:
    mask = privileged_mask(values.reset_index(drop=True), attribute)
    known = mask.notna().to_numpy()
    priv = (mask.fillna(False).to_numpy(dtype=bool)) & known
    unpriv = (~mask.fillna(True).to_numpy(dtype=bool)) & known
    good = y_true == 0
    fav_priv, fav_unpriv = _rate(approved, priv), _rate(approved, unpriv)
    tpr_priv, tpr_unpriv = _rate(approved, priv & good), _rate(approved, unpriv & good)
    di = _ratio(fav_unpriv, fav_priv)
    return {
        "name": attribute.name,
        "privileged_group": attribute.privileged.describe(attribute.name),
        "n_privileged": int(priv.sum()),
        "n_unprivileged": int(unpriv.sum()),
        "n_missing_excluded": int((~known).sum()),
        "favourable_rate_privileged": fav_priv,
        "favourable_rate_unprivileged": fav_unpriv,
        "bad_rate_privileged": _rate(y_true, priv),
        "bad_rate_unprivileged": _rate(y_true, unpriv),
        "disparate_impact": di,
        "statistical_parity_difference": _diff(fav_unpriv, fav_priv),
        "equal_opportunity_difference": _diff(tpr_unpriv, tpr_priv),
        "within_bounds": di is not None and bounds[0] <= di <= bounds[1],
    }


def fairness_report(
    data: pd.DataFrame, y_true: Iterable[int], y_score: Iterable[float], config: DatasetConfig,
    threshold: float | None = None,
) -> dict[str, Any]:
    """`bias.json`: per protected attribute of the config, the group sizes and fairness measures of the
    decision at `threshold` (default: the config's decision threshold). `y_true` is 0/1 with 1 = positive
    (bad) label; `data` holds the protected attribute columns, row-aligned with the labels and scores."""
    threshold = config.thresholds.decision_threshold if threshold is None else float(threshold)
    y = np.asarray(y_true, dtype=np.int64).ravel()
    s = np.asarray(y_score, dtype=np.float64).ravel()
    if not (len(data) == y.size == s.size):
        raise ValueError(f"data, labels and scores differ in length ({len(data)}, {y.size}, {s.size})")
    approved = (s < threshold).astype(np.float64)
    attributes = []
    for attr in config.protected_attributes:
        if attr.name not in data.columns:
            raise ValueError(f"protected attribute {attr.name!r} (config {config.source}) is not a column of the "
                             f"evaluation data; keep it in the preprocess output")
        attributes.append(attribute_report(attr, data[attr.name], y, approved, config.thresholds.disparate_impact))
    return {
        "version": REPORT_VERSION,
        "favourable_outcome": f"approved: score < {threshold:g}",
        "decision_threshold": threshold,
        "disparate_impact_bounds": list(config.thresholds.disparate_impact),
        "n_rows": int(y.size),
        "approval_rate": float(approved.mean()) if y.size else None,
        "attributes": attributes,
    }
