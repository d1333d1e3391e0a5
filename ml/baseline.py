"""Baseline (SageMaker Processing job): Model Monitor statistics and constraints of the model's features.

    python3 ml/baseline.py --data-dir D --config-dir C --output-dir O

D holds the train CSV written by ml/preprocess.py (cleaned features, id and 0/1 target; every *.csv in D is read),
C holds dataset_config.json (the resolved config preprocess wrote, its cleaning fitted). Writes O/statistics.json
and O/constraints.json over the model's features only, in model order (numeric, then categorical), and
O/dataset_config.json: the config travels with the baseline, so the monitors read current data with its types,
its cleaning and its feature list (sagestep.monitoring.columns). On bad input it prints what is wrong and how to
fix it to stderr and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

try:
    import sagestep  # noqa: F401
except ImportError:  # run from a checkout without PYTHONPATH: the code bundle mirrors the repo (ml/ beside src/)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import pandas as pd

from sagestep.monitoring.baseline import BaselineInputError, build_baseline
from sagestep.monitoring.columns import BASELINE_CONFIG
from sagestep.monitoring.files import write_json
from sagestep.training.config import ConfigError, DatasetConfig, dataset_config_from_dict
from sagestep.training.preprocess import read_prepared_csv

CONFIG_FILE = "dataset_config.json"


class BaselineJobError(Exception):
    """Bad job input; the message names the file, the field and the fix."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="directory holding the train CSV")
    parser.add_argument("--config-dir", type=Path, required=True, help=f"directory holding {CONFIG_FILE}")
    parser.add_argument("--output-dir", type=Path, required=True, help="where statistics.json and constraints.json go")
    return parser.parse_args(argv)


def baseline(data: pd.DataFrame, config: dict[str, Any] | DatasetConfig,
             source: str = "train data") -> tuple[dict, dict]:
    """(statistics.json, constraints.json) of the configured features of `data`. Pure: no I/O."""
    if not isinstance(config, DatasetConfig):
        try:
            config = dataset_config_from_dict(config, source=CONFIG_FILE)
        except ConfigError as exc:
            raise BaselineJobError(str(exc)) from None
    try:
        return build_baseline(data, numeric=config.features.numeric, categorical=config.features.categorical,
                              source=source)
    except BaselineInputError as exc:
        raise BaselineJobError(str(exc)) from None


def read_config(config_dir: Path) -> dict[str, Any]:
    path = config_dir / CONFIG_FILE
    if not path.is_file():
        raise BaselineJobError(f"{path}: not found; pass the preprocess step's config output as --config-dir")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BaselineJobError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise BaselineJobError(f"{path}: expected a JSON object")
    return config


def read_train(data_dir: Path) -> tuple[pd.DataFrame, str]:
    files = sorted(data_dir.glob("*.csv")) if data_dir.is_dir() else []
    if not files:
        raise BaselineJobError(f"{data_dir}: no CSV file found; pass the preprocess step's train output as --data-dir")
    frames = [read_prepared_csv(f) for f in files]
    for file, frame in zip(files, frames):
        if frame.empty:
            raise BaselineJobError(f"{file}: the file has no data rows; re-run preprocess")
    data = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    return data, str(files[0]) if len(files) == 1 else str(data_dir)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        document = read_config(args.config_dir)
        try:
            config = dataset_config_from_dict(document, source=str(args.config_dir / CONFIG_FILE))
        except ConfigError as exc:
            raise BaselineJobError(str(exc)) from None
        data, source = read_train(args.data_dir)
        statistics, constraints = baseline(data, config, source)
    except BaselineJobError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_json(args.output_dir / "statistics.json", statistics)
    write_json(args.output_dir / "constraints.json", constraints, indent=2)
    write_json(args.output_dir / BASELINE_CONFIG, config.to_dict(), indent=2)
    print(
        f"baseline: {statistics['dataset']['item_count']} rows, {len(statistics['features'])} features -> "
        f"{args.output_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
