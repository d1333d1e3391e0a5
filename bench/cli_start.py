"""CLI start time: `sagestep --help` (and each sub-command's `--help`) against `aws --version` (awscli v1).

Both are Python command lines started from the same virtual environment, so the comparison is interpreter start +
imports + argument parsing. The commands run alternately, `--rounds` times each, so machine noise hits both alike;
the medians and their ratio are printed and written to bench/results/cli_start.json.

    .venv/bin/python -m bench.cli_start [--rounds 15]

Goal (issue 10): sagestep's median ≤ 0.3 s on an idle machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent
GOAL_SECONDS = 0.3
SUB_COMMANDS = ["local", "models", "demo", "baseline", "monitor", "merge-ground-truth", "ab", "validate"]


def _time(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    commands = {"sagestep --help": [str(BIN / "sagestep"), "--help"], "aws --version": [str(BIN / "aws"), "--version"]}
    commands.update({f"sagestep {name} --help": [str(BIN / "sagestep"), name, "--help"] for name in SUB_COMMANDS})
    missing = [c[0] for c in commands.values() if not Path(c[0]).is_file()]
    if missing:
        print(f"error: {', '.join(sorted(set(missing)))} not found; run `make .venv/.installed` first", file=sys.stderr)
        return 2
    for command in commands.values():  # warm the page cache and .pyc files once
        _time(command)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.rounds):
        for name, command in commands.items():
            samples[name].append(_time(command))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    aws = medians["aws --version"]
    worst = max(v for k, v in medians.items() if k.startswith("sagestep"))
    for name, median in medians.items():
        print(f"{name:<36} median {median * 1000:6.0f} ms  ({median / aws:.2f}× aws --version)")
    print(f"slowest sagestep help: {worst * 1000:.0f} ms (goal ≤ {GOAL_SECONDS * 1000:.0f} ms: {'met' if worst <= GOAL_SECONDS else 'NOT met'})")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cli_start.json").write_text(json.dumps({
        "benchmark": "cli_start",
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "rounds": args.rounds,
        "median_seconds": medians,
        "ratio_to_aws_version": {name: median / aws for name, median in medians.items()},
        "goal_seconds": GOAL_SECONDS,
        "goal_met": worst <= GOAL_SECONDS,
    }, indent=1) + "\n")
    return 0 if worst <= GOAL_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
