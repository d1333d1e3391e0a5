"""One drift tool on reference.parquet / current.parquet, run as its own process by bench/data_quality.py.

    python bench/_drift_tools.py TOOL DATA_DIR OUT_JSON      TOOL: sagestep | numpy | nannyml | evidently

Imports the tool first, then records the resident memory, then times reading the Parquet files and the tool's run.
Writes {"tool", "version", "wall_s", "peak_extra_mb", "flagged": [...]} — peak extra memory is the process's peak
RSS minus its RSS after imports (data loading included, as every tool must hold or stream the data).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def peak_mb() -> float:
    """VmHWM: the peak RSS of this process image (ru_maxrss would carry the parent's peak across fork + exec)."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def run_sagestep(data: Path) -> tuple[str, list[str], float]:
    import sagestep
    from sagestep.monitoring.baseline import build_baseline
    from sagestep.monitoring.data_quality import run_data_quality
    from sagestep.monitoring.readers import iter_chunks

    start = time.perf_counter()
    statistics, constraints = build_baseline(iter_chunks(data / "reference.parquet"))
    constraints["monitoring_config"]["distribution_constraints"].update(
        comparison_method="Robust", comparison_threshold=0.0)
    result = run_data_quality(iter_chunks(data / "current.parquet"), statistics, constraints)
    drifted = sorted({v["feature_name"] for v in result.violation_list
                      if v["constraint_check_type"] == "baseline_drift_check"})
    return getattr(sagestep, "__version__", "dev"), drifted, time.perf_counter() - start


def run_numpy(data: Path):
    import numpy as np
    import pyarrow.parquet as pq

    start = time.perf_counter()
    ref, cur = pq.read_table(data / "reference.parquet"), pq.read_table(data / "current.parquet")
    n, m = ref.num_rows, cur.num_rows
    correction = 1.8 * np.sqrt((n + m) / (n * m))
    flagged = []
    for name in ref.column_names:
        a = np.sort(ref[name].to_numpy())
        b = np.sort(cur[name].to_numpy())
        grid = np.concatenate([a, b])
        l_inf = np.max(np.abs(np.searchsorted(a, grid, "right") / n - np.searchsorted(b, grid, "right") / m))
        edges = np.quantile(a, np.linspace(0, 1, 11))[1:-1]
        p = np.bincount(np.searchsorted(edges, a, "right"), minlength=10) / n + 1e-6
        q = np.bincount(np.searchsorted(edges, b, "right"), minlength=10) / m + 1e-6
        _psi = float(np.sum((q - p) * np.log(q / p)))
        if l_inf - correction > 0:
            flagged.append(name)
    return np.__version__, sorted(flagged), time.perf_counter() - start


def run_nannyml(data: Path):
    import nannyml as nml
    import pandas as pd

    start = time.perf_counter()
    ref, cur = pd.read_parquet(data / "reference.parquet"), pd.read_parquet(data / "current.parquet")
    columns = list(ref.columns)
    calc = nml.UnivariateDriftCalculator(column_names=columns, chunk_number=10)
    calc.fit(ref)
    frame = calc.calculate(cur).filter(period="analysis").to_df()
    flagged = sorted(c for c in columns if bool(frame[(c, "jensen_shannon", "alert")].any()))
    return nml.__version__, flagged, time.perf_counter() - start


def run_evidently(data: Path):
    import evidently
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    start = time.perf_counter()
    ref, cur = pd.read_parquet(data / "reference.parquet"), pd.read_parquet(data / "current.parquet")
    snapshot = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
    flagged = []
    for metric in snapshot.dict()["metrics"]:
        name = str(metric.get("metric_name", ""))
        config = metric.get("config", {})
        column = config.get("column")
        threshold = config.get("threshold")
        value = metric.get("value")
        if name.startswith("ValueDrift") and column is not None and isinstance(value, int | float):
            method = str(config.get("method", "")).lower()
            is_p_value = "p_value" in method or "test" in method and "distance" not in method
            drifted = value < threshold if is_p_value else value >= threshold
            if drifted:
                flagged.append(column)
    return evidently.__version__, sorted(flagged), time.perf_counter() - start


TOOLS = {"sagestep": run_sagestep, "numpy": run_numpy, "nannyml": run_nannyml, "evidently": run_evidently}


def main(argv: list[str]) -> int:
    tool, data, out = argv[0], Path(argv[1]), Path(argv[2])
    run = TOOLS[tool]
    # import the tool's modules before the memory reference point
    {"sagestep": lambda: [__import__(f"sagestep.monitoring.{m}") for m in ("baseline", "data_quality", "readers")],
     "numpy": lambda: __import__("pyarrow.parquet"),
     "nannyml": lambda: __import__("nannyml"),
     "evidently": lambda: (__import__("evidently"), __import__("evidently.presets"))}[tool]()
    import pandas  # noqa: F401  (every tool uses pandas and pyarrow; keep their imports out of "extra")
    import pyarrow.parquet  # noqa: F401
    base = rss_mb()
    version, flagged, wall = run(data)
    out.write_text(json.dumps({"tool": tool, "version": version, "wall_s": round(wall, 3),
                               "peak_extra_mb": round(peak_mb() - base, 1), "flagged": flagged}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
