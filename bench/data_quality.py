"""Data-quality drift: sagestep vs NannyML univariate drift vs Evidently DataDriftPreset, plus the numpy floor.

Workload (issue 5): 1,000,000 current rows × 30 numeric columns against a 100,000-row reference, 10 columns
shifted. Built from real rows: each column resamples one of credit_data's 9 numeric columns (a log or square-root
view for the columns past the ninth), with noise of 1% of its standard deviation to break ties. Shift: d00–d04
move by +0.1σ, d05–d09 are stretched ×1.1 around their mean; d10–d29 are clean.

Each tool runs as its own process on the same Parquet files (bench/_drift_tools.py): sagestep (statistics + all
checks + drift, Robust, threshold 0) from .venv, the numpy exact-KS + PSI floor, NannyML 0.13.1 (Jensen–Shannon,
10 chunks; a column is flagged when any chunk alerts) and Evidently 0.7.23 (DataDriftPreset defaults) from
.venv-bench-drift.

    .venv/bin/python -m bench.data_quality [--rows 1000000] [--reference-rows 100000] [--skip evidently]

Writes bench/results/data_quality.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
PEER_PYTHON = ROOT / ".venv-bench-drift" / "bin" / "python"
RESULTS = ROOT / "bench" / "results"
RUNNER = ROOT / "bench" / "_drift_tools.py"
NUMERIC = ["Seniority", "Time", "Age", "Expenses", "Income", "Assets", "Debt", "Amount", "Price"]
N_COLUMNS, N_SHIFTED = 30, 10
ROW_GROUP_ROWS = 100_000  # as a streaming writer (Spark, Firehose) would cut them; pyarrow defaults to 1M rows


def real_columns() -> list[np.ndarray]:
    frame = pd.read_csv(ROOT / "data" / "credit_data" / "credit_data.csv")
    columns = []
    for j in range(N_COLUMNS):
        name = NUMERIC[j % len(NUMERIC)]
        values = pd.to_numeric(frame[name], errors="coerce").dropna().to_numpy(dtype=np.float64)
        values = values[values < 99_999_999]  # the data set's missing-value code
        view = j // len(NUMERIC)
        if view == 1:
            values = np.log1p(np.clip(values, 0, None))
        elif view >= 2:
            values = np.sqrt(np.clip(values, 0, None)) + view
        columns.append(values)
    return columns


def make_frames(rows: int, reference_rows: int, seed: int = 20261122) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    rng = np.random.default_rng(seed)
    ref, cur = {}, {}
    for j, values in enumerate(real_columns()):
        name = f"d{j:02d}"
        sigma = float(values.std())
        ref[name] = rng.choice(values, reference_rows) + rng.normal(0, 0.01 * sigma, reference_rows)
        column = rng.choice(values, rows) + rng.normal(0, 0.01 * sigma, rows)
        if j < N_SHIFTED // 2:
            column = column + 0.1 * sigma
        elif j < N_SHIFTED:
            column = values.mean() + (column - values.mean()) * 1.1
        cur[name] = column
    shifted = [f"d{j:02d}" for j in range(N_SHIFTED)]
    return pd.DataFrame(ref), pd.DataFrame(cur), shifted


def run_tool(tool: str, python: Path, data: Path) -> dict:
    out = data / f"{tool}.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.run([str(python), str(RUNNER), tool, str(data), str(out)], capture_output=True, text=True,
                          env=env, timeout=1800)
    total = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    result = json.loads(out.read_text())
    result["process_wall_s"] = round(total, 3)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reference-rows", type=int, default=100_000)
    parser.add_argument("--skip", action="append", default=[], help="tool to leave out (repeatable)")
    parser.add_argument("--keep", type=Path, help="write the Parquet files here and keep them (default: a temp dir)")
    args = parser.parse_args(argv)
    if not PEER_PYTHON.exists():
        print(f"error: {PEER_PYTHON} missing; run `make bench` (it installs nannyml and evidently)", file=sys.stderr)
        return 2
    ref, cur, shifted = make_frames(args.rows, args.reference_rows)
    tools = [("sagestep", Path(sys.executable)), ("numpy", Path(sys.executable)), ("nannyml", PEER_PYTHON),
             ("evidently", PEER_PYTHON)]
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-dq-") as tmp:
        data = args.keep or Path(tmp)
        data.mkdir(parents=True, exist_ok=True)
        ref.to_parquet(data / "reference.parquet", index=False, row_group_size=ROW_GROUP_ROWS)
        cur.to_parquet(data / "current.parquet", index=False, row_group_size=ROW_GROUP_ROWS)
        del ref, cur
        for tool, python in tools:
            if tool in args.skip:
                continue
            r = run_tool(tool, python, data)
            r["flagged_count"] = len(r["flagged"])
            r["exactly_shifted"] = r["flagged"] == shifted
            r["missed"] = [c for c in shifted if c not in r["flagged"]]
            r["false"] = [c for c in r["flagged"] if c not in shifted]
            results[tool] = r
            print(f"{tool:10s} {r['wall_s']:8.2f} s  peak extra {r['peak_extra_mb']:7.1f} MB  flagged "
                  f"{len(r['flagged'])} (missed {r['missed']}, false {r['false']})")
    ours = results["sagestep"]
    ratios = {f"{t}_wall_over_sagestep": round(r["wall_s"] / ours["wall_s"], 2)
              for t, r in results.items() if t != "sagestep"}
    document = {
        "benchmark": "data_quality",
        "workload": {"current_rows": args.rows, "reference_rows": args.reference_rows, "columns": N_COLUMNS,
                     "shifted": shifted, "source": "credit_data numeric columns, resampled + 1% σ noise"},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "tools": results,
        "ratios": ratios,
        "targets": {"nannyml_wall_over_sagestep": ">= 2", "evidently_wall_over_sagestep": ">= 40",
                    "sagestep_peak_extra_mb": "<= 300", "sagestep_flags_exactly_shifted": True},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "data_quality.json").write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(ratios))
    return 0


if __name__ == "__main__":
    sys.exit(main())
