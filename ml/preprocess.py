"""Preprocess (SageMaker Processing job): clean the raw data with the dataset config's cleaning, check it, split it,
hash it.

    python3 ml/preprocess.py --data-dir D --config-dir C --output-dir O

D holds one or more raw CSV/Parquet files, C exactly one dataset config (.yaml/.yml/.json). Writes
O/train/train.csv, O/validation/validation.csv, O/test/test.csv (cleaned: numbers and dates read, derived date
features added, rows without a label dropped when the config says so, high-cardinality categories capped),
O/report/validation_report.json (the checks and what the cleaning did), O/report/manifest.json and
O/config/dataset_config.json (the resolved config, its category caps fitted on the training split: what training,
serving and monitoring clean with). When a check fails it writes the report, writes the first failure (one line,
naming the user's file or S3 URI and the fix) to /opt/ml/output/message (the job's ExitMessage) and the rest to
stderr, and exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

try:
    import sagestep
except ImportError:  # run from a checkout without PYTHONPATH: the code bundle mirrors the repo (ml/ beside src/)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import sagestep

from sagestep.aws.jobfiles import MAX_EXIT_MESSAGE, JobFiles, write_exit_message
from sagestep.training.cleaning import apply_caps, cap_summary, fit_category_caps
from sagestep.training.config import ConfigError, DatasetConfig, find_config_file, load_dataset_config
from sagestep.training.preprocess import (
    DataError,
    Splits,
    check_and_clean,
    failed_checks_summary,
    file_record,
    list_data_files,
    prepare_data,
    read_table,
    sha256_file,
    split_data,
    tree_sha256,
    write_prepared,
)

CODE_ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="directory of raw CSV/Parquet files")
    parser.add_argument("--config-dir", type=Path, required=True, help="directory holding one dataset config")
    parser.add_argument("--output-dir", type=Path, required=True, help="where train/, validation/, test/, report/, config/ go")
    return parser.parse_args(argv)


def build_manifest(config: DatasetConfig, config_path: Path, inputs: list[dict[str, Any]], splits: Splits,
                   outputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "version": 1,
        "dataset": config.name,
        "config": {"path": config_path.name, "sha256": sha256_file(config_path), "resolved_sha256": config.sha256()},
        "code": {"version": sagestep.__version__, "sha256": tree_sha256(CODE_ROOT)},
        "inputs": inputs,
        "split": {
            "method": splits.method,
            "seed": config.split.seed,
            "validation_fraction": config.split.validation_fraction,
            "test_fraction": config.split.test_fraction,
        },
        "outputs": outputs,
    }


def write_json(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


REPORT_POINTER = " (every check: report/validation_report.json of the run)"


def fail(args: argparse.Namespace, message: str, report_written: bool = False) -> int:
    """The failure, first line leading: ExitMessage (one line; when a validation report was written it ends by
    pointing at it, the first line shortened to leave room) and stderr (everything)."""
    print(f"preprocess failed: {message}", file=sys.stderr)
    first = message.splitlines()[0] if message else "preprocess failed"
    if report_written:
        room = MAX_EXIT_MESSAGE - len(REPORT_POINTER.encode()) - 8
        cut = first.encode("utf-8")[:room].decode("utf-8", "ignore")
        first = (cut if cut == first else cut.rstrip() + " …") + REPORT_POINTER
    write_exit_message(args.output_dir, first)
    return 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out: Path = args.output_dir
    sources = JobFiles.of(args.config_dir)  # errors name the S3 URIs the user gave, not the job's copies
    try:
        config_path = find_config_file(args.config_dir)
        config = load_dataset_config(config_path, source=sources.name(config_path))
        files = list_data_files(args.data_dir)
        tables = {sources.name(f): read_table(f) for f in files}
    except (ConfigError, DataError) as exc:
        return fail(args, str(exc))

    report, data = check_and_clean(tables, config)
    write_json(out / "report" / "validation_report.json", report)
    if not report["passed"]:
        location = sources.name(args.data_dir)
        return fail(args, failed_checks_summary(report, location), report_written=True)

    try:
        splits = split_data(prepare_data(data, config), config)
    except DataError as exc:
        return fail(args, str(exc))
    del data
    if config.cleaning.max_categories:  # fitted on the training split only, applied to every split
        config = fit_category_caps(splits.train, config)
        report["cleaning"]["category_caps"] = cap_summary(splits.train, config)
        splits = Splits(*(apply_caps(part, config) for _, part in splits.items()), splits.method)
        write_json(out / "report" / "validation_report.json", report)

    outputs: dict[str, dict[str, Any]] = {}
    for name, part in splits.items():
        path = out / name / f"{name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_prepared(part, path)
        rate_key = "target_mean" if config.is_regression else "positive_rate"
        outputs[name] = {**file_record(path, out, rows=len(part)),
                         rate_key: round(float(part[config.target].mean()), 6)}
    config_out = out / "config" / "dataset_config.json"
    config_out.parent.mkdir(parents=True, exist_ok=True)
    config_out.write_text(config.to_json(), encoding="utf-8")
    outputs["dataset_config"] = file_record(config_out, out)
    outputs["validation_report"] = file_record(out / "report" / "validation_report.json", out)
    rows = {sources.name(f): len(t) for f, t in zip(files, tables.values())}
    inputs = [file_record(f, args.data_dir, rows=rows[sources.name(f)]) for f in files]
    write_json(out / "report" / "manifest.json", build_manifest(config, config_path, inputs, splits, outputs))

    sizes = ", ".join(f"{name} {outputs[name]['rows']}" for name, _ in splits.items())
    dropped = report["cleaning"]["dropped_unlabeled_rows"]
    print(f"preprocess: dataset {config.name}: {report['n_rows']} rows checked"
          + (f", {dropped} without a label dropped" if dropped else "") + f", {splits.method} split: {sizes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
