"""`summary.json`: the few numbers a monitoring job hands to the state machine, written beside its reports.

`{"Check": "data_quality"|"model_quality"|"bias_attribution", "Violations": int, "ViolationTypes": [...],
"FlaggedFeatures": [...], "Metrics": {name: number}, "Records": int}`. Non-finite metrics are left out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sagestep.monitoring.readers import input_files

CHECKS = ("data_quality", "model_quality", "bias_attribution")


def summary(check: str, violations: Iterable[Mapping[str, Any]], *, flagged: Iterable[str] = (),
            metrics: Mapping[str, Any] | None = None, records: int = 0) -> dict[str, Any]:
    if check not in CHECKS:
        raise ValueError(f"check must be one of {CHECKS}, got {check!r}")
    found = list(violations)
    types = sorted({str(v.get("constraint_check_type")) for v in found})
    clean = {k: float(v) for k, v in (metrics or {}).items()
             if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)}
    return {"Check": check, "Violations": len(found), "ViolationTypes": types,
            "FlaggedFeatures": list(dict.fromkeys(flagged)), "Metrics": clean, "Records": int(records)}


def has_data(path: str | Path) -> bool:
    """False for an empty window: no such directory, no data files, or only empty files."""
    root = Path(path)
    if not root.exists():
        return False
    try:
        files = input_files(root)
    except ValueError:
        return False
    for file, _ in files:
        if file.stat().st_size == 0:
            continue
        with open(file, "rb") as handle:
            if handle.read(65536).strip():
                return True
    return False
