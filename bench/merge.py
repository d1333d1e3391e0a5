"""Ground-truth merge: 1,000,000 capture records with 1,000,000 labels, sagestep vs a pandas join.

Capture records are built from real rows (credit_data applications resampled, as CSV endpointInput in the model's
feature order, a JSON endpointOutput), spread over the two hours of the window in one file per 5 minutes, each with an inferenceId;
the labels arrive in the two following hours (6 files an hour) in a shuffled order. sagestep runs `sagestep.monitoring.merge.merge_ground_truth` (2
workers, streaming, called as the merge Lambda calls it); the baseline reads both sides with `pandas.read_json(lines=True)`, joins on the key and
writes JSON lines. Both run as their own process; memory is the peak RSS of the whole process tree.

    .venv/bin/python -m bench.merge [--records 1000000]

Writes bench/results/merge.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from bench._proc import measure

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
FEATURES = ["Seniority", "Time", "Age", "Expenses", "Income", "Assets", "Debt", "Amount", "Price",
            "Home", "Marital", "Records", "Job"]
AT = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)
CAPTURE_FILE_MINUTES = 5  # an endpoint rolls its capture files every few minutes: 24 files in the window
LABEL_FILES_PER_HOUR = 6
# What the merge Lambda runs (the CLI adds ~2 s of imports for its other commands).
SAGESTEP_MERGE = """
import json, sys
from sagestep.monitoring.merge import merge_ground_truth, parse_time
cap_dir, gt_dir, out, at = sys.argv[1:5]
report = merge_ground_truth(cap_dir, gt_dir, out, start_offset="-PT3H", end_offset="-PT1H", at=parse_time(at), workers=2)
print(json.dumps(report.to_dict()))
"""
PANDAS_JOIN = """
import sys, glob, pandas as pd
cap_dir, gt_dir, out = sys.argv[1:4]
caps = pd.concat([pd.read_json(f, lines=True, dtype=False) for f in sorted(glob.glob(cap_dir + '/**/*.jsonl', recursive=True))], ignore_index=True)
gts = pd.concat([pd.read_json(f, lines=True, dtype=False) for f in sorted(glob.glob(gt_dir + '/**/*.jsonl', recursive=True))], ignore_index=True)
caps['key'] = caps['eventMetadata'].str['inferenceId']
gts['key'] = gts['eventMetadata'].str['eventId']
gts = gts.drop_duplicates('key', keep='last')[['key', 'groundTruthData']]
merged = caps.merge(gts, on='key', how='inner').drop(columns='key')
merged.to_json(out, orient='records', lines=True)
print(len(merged))
"""


def write_inputs(base: Path, n: int, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    frame = pd.read_csv(ROOT / "data" / "credit_data" / "credit_data.csv")
    rows = np.array([",".join("" if pd.isna(v) else str(v) for v in row)
                     for row in frame[FEATURES].itertuples(index=False)])
    labels = (frame["Status"] == "bad").astype(int).astype(str).to_numpy()
    pick = rng.integers(0, len(rows), n)
    seconds = np.sort(rng.integers(0, 7200, n))
    scores = rng.random(n)
    start = AT - dt.timedelta(hours=3)
    capture_root = base / "capture" / "credit-endpoint" / "AllTraffic"
    handles: dict[str, object] = {}
    for i in range(n):
        t = start + dt.timedelta(seconds=int(seconds[i]))
        hour = t.strftime("%Y/%m/%d/%H")
        slot = f"{hour}/capture-{t.minute // CAPTURE_FILE_MINUTES:02d}.jsonl"
        if slot not in handles:
            (capture_root / hour).mkdir(parents=True, exist_ok=True)
            handles[slot] = open(capture_root / slot, "w")
        s = scores[i]
        handles[slot].write(
            '{"captureData":{"endpointInput":{"observedContentType":"text/csv","mode":"INPUT","data":"%s",'
            '"encoding":"CSV"},"endpointOutput":{"observedContentType":"application/json","mode":"OUTPUT",'
            '"data":"{\\"predictions\\":[{\\"score\\":%.4f,\\"decision\\":\\"%s\\",\\"threshold\\":0.5}]}",'
            '"encoding":"JSON"}},"eventMetadata":{"eventId":"e-%d","inferenceId":"i-%d","inferenceTime":"%s"},'
            '"eventVersion":"0"}\n' % (rows[pick[i]], s, "decline" if s >= 0.5 else "approve", i, i,
                                       t.strftime("%Y-%m-%dT%H:%M:%SZ")))
    for h in handles.values():
        h.close()
    order = rng.permutation(n)
    gt_root = base / "ground_truth"
    half = n // 2
    for part, (lo, hi) in enumerate(((0, half), (half, n))):
        hour = (AT - dt.timedelta(hours=2 - part)).strftime("%Y/%m/%d/%H")
        (gt_root / hour).mkdir(parents=True, exist_ok=True)
        for f, chunk in enumerate(np.array_split(order[lo:hi], LABEL_FILES_PER_HOUR)):
            with open(gt_root / hour / f"labels-{f:02d}.jsonl", "w") as out:
                for i in chunk:
                    out.write('{"groundTruthData":{"data":"%s","encoding":"CSV"},"eventMetadata":{"eventId":"i-%d"},'
                              '"eventVersion":"0"}\n' % (labels[pick[i]], i))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    with tempfile.TemporaryDirectory(prefix="bench-merge-") as tmp:
        base = Path(tmp)
        write_inputs(base, args.records)
        input_mb = sum(f.stat().st_size for f in base.rglob("*.jsonl")) / 2**20
        ours_wall, ours_peak, out = measure(
            [sys.executable, "-c", SAGESTEP_MERGE, str(base / "capture"), str(base / "ground_truth"),
             str(base / "merged"), AT.isoformat()], env=env)
        report = json.loads(out.strip().splitlines()[-1])
        pandas_wall, pandas_peak, pandas_out = measure(
            [sys.executable, "-c", PANDAS_JOIN, str(base / "capture"), str(base / "ground_truth"),
             str(base / "pandas.jsonl")], env=env)
    tools = {
        "sagestep": {"wall_s": round(ours_wall, 2), "peak_mb": round(ours_peak, 1), "report": report},
        "pandas_join": {"wall_s": round(pandas_wall, 2), "peak_mb": round(pandas_peak, 1),
                        "merged": int(pandas_out.strip().splitlines()[-1]), "version": pd.__version__},
    }
    document = {
        "benchmark": "merge",
        "workload": {"capture_records": args.records, "labels": args.records, "input_mb": round(input_mb, 1)},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "tools": tools,
        "ratios": {"pandas_wall_over_sagestep": round(pandas_wall / ours_wall, 2),
                   "pandas_peak_over_sagestep": round(pandas_peak / ours_peak, 2)},
        "targets": {"sagestep_wall_s": "<= 10", "sagestep_peak_mb": "<= 512"},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "merge.json").write_text(json.dumps(document, indent=2) + "\n")
    for name, r in tools.items():
        print(f"{name:12s} {r['wall_s']:7.2f} s  peak {r['peak_mb']:7.1f} MB")
    print(json.dumps(document["ratios"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
