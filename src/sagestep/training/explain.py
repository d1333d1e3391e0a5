"""Global explanation: mean |SHAP| per feature from the booster's own TreeSHAP (`ScoringModel.contributions`).

`explainability.json`:
```
{"version": 1, "method": "tree_shap", "algorithm": "lightgbm", "output": "log_odds", "n_rows": 891,
 "expected_value": -1.02,                       # mean bias term (log-odds of the average score)
 "ranking": ["Seniority", "Income", ...],         # features by mean |SHAP|, largest first
 "global_shap_values": {"Seniority": 0.41, ...},  # mean |SHAP| per feature (the drift monitor compares these)
 "features": [{"name", "rank", "mean_abs_shap", "mean_shap", "share"}, ...]}  # share = of the total mean |SHAP|
```
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sagestep.training.model import BIAS_COLUMN, ScoringModel

REPORT_VERSION = 1


def global_explanation(model: ScoringModel, data: pd.DataFrame, *, max_rows: int | None = None,
                       seed: int = 0) -> dict[str, Any]:
    """Rank the model's features by mean |SHAP| over `data` (a sample of `max_rows` rows when set)."""
    if len(data) == 0:
        raise ValueError("no rows to explain")
    if max_rows is not None and len(data) > max_rows:
        data = data.sample(n=max_rows, random_state=seed)
    contributions = model.contributions(data)
    return summarize_contributions(contributions, model.algorithm)


def summarize_contributions(contributions: pd.DataFrame, algorithm: str) -> dict[str, Any]:
    features = [c for c in contributions.columns if c != BIAS_COLUMN]
    values = contributions[features].to_numpy(dtype=np.float64)
    mean_abs = np.abs(values).mean(axis=0)
    mean = values.mean(axis=0)
    total = float(mean_abs.sum())
    order = sorted(range(len(features)), key=lambda j: (-mean_abs[j], features[j]))
    ranked = [
        {
            "name": features[j],
            "rank": rank,
            "mean_abs_shap": float(mean_abs[j]),
            "mean_shap": float(mean[j]),
            "share": float(mean_abs[j] / total) if total else 0.0,
        }
        for rank, j in enumerate(order, start=1)
    ]
    return {
        "version": REPORT_VERSION,
        "method": "tree_shap",
        "algorithm": algorithm,
        "output": "log_odds",
        "n_rows": int(len(contributions)),
        "expected_value": float(contributions[BIAS_COLUMN].mean()) if BIAS_COLUMN in contributions else None,
        "ranking": [r["name"] for r in ranked],
        "global_shap_values": {r["name"]: r["mean_abs_shap"] for r in ranked},
        "features": ranked,
    }
