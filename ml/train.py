"""Train (SageMaker Training job): fit LightGBM or XGBoost on the preprocess output, early-stopped on validation.

Container contract: paths from SM_MODEL_DIR, SM_CHANNEL_TRAIN, SM_CHANNEL_VALIDATION, SM_CHANNEL_CONFIG,
SM_INPUT_CONFIG_DIR (hyperparameters.json, string values, `algorithm` required), SM_OUTPUT_DATA_DIR and
SM_OUTPUT_DIR, defaulting to the standard /opt/ml paths. Writes the model (booster + model_meta.json) into the
model directory, which the platform packs into model.tar.gz, and training_summary.json into the output data
directory. On a bad hyperparameter or data error: the reason goes to <SM_OUTPUT_DIR>/failure and stderr, exit 1.
Metric lines (`validation:auc=0.831234;`) go to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

try:
    import sagestep  # noqa: F401
except ImportError:  # run from a checkout without PYTHONPATH: the code bundle mirrors the repo (ml/ beside src/)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sagestep.training.config import ConfigError, find_config_file, load_dataset_config
from sagestep.training.model import ModelInputError
from sagestep.training.preprocess import DataError, file_record, load_prepared
from sagestep.training.fit import HyperparameterError, parse_hyperparameters, train_model, training_summary

MAX_FAILURE_REASON = 1024  # SageMaker's FailureReason limit


def _env_path(name: str, default: str) -> Path:
    return Path(os.environ.get(name) or default)


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=_env_path("SM_MODEL_DIR", "/opt/ml/model"))
    parser.add_argument("--train", type=Path, default=_env_path("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    parser.add_argument("--validation", type=Path,
                        default=_env_path("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation"))
    parser.add_argument("--config", type=Path, default=_env_path("SM_CHANNEL_CONFIG", "/opt/ml/input/data/config"))
    parser.add_argument("--input-config-dir", type=Path, default=_env_path("SM_INPUT_CONFIG_DIR", "/opt/ml/input/config"))
    parser.add_argument("--output-data-dir", type=Path, default=_env_path("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data"))
    parser.add_argument("--output-dir", type=Path, default=_env_path("SM_OUTPUT_DIR", "/opt/ml/output"))
    return parser.parse_known_args(argv)


def read_hyperparameters(input_config_dir: Path) -> dict[str, Any]:
    path = input_config_dir / "hyperparameters.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HyperparameterError(f"{path}: not found; the training job must set HyperParameters "
                                  f"(at least algorithm)") from None
    except ValueError as exc:
        raise HyperparameterError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise HyperparameterError(f"{path}: must be a JSON object of name → string value")
    return raw


def write_failure(output_dir: Path, reason: str) -> None:
    print(reason, file=sys.stderr)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "failure").write_text(reason[:MAX_FAILURE_REASON], encoding="utf-8")
    except OSError as exc:
        print(f"could not write {output_dir / 'failure'}: {exc}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args, unknown = parse_args(argv)
    if unknown:
        write_failure(args.output_dir, f"unknown arguments {unknown}; hyperparameters go in hyperparameters.json")
        return 1
    try:
        params = parse_hyperparameters(read_hyperparameters(args.input_config_dir))
        config = load_dataset_config(find_config_file(args.config))
        train = load_prepared(args.train, config)
        validation = load_prepared(args.validation, config)
        training_data = {
            "train": [file_record(f, args.train, rows=None) for f in sorted(args.train.glob("*.csv"))],
            "validation": [file_record(f, args.validation) for f in sorted(args.validation.glob("*.csv"))],
            "config_sha256": config.sha256(),
        }
        result = train_model(train, validation, config, params, metadata={"training_data": training_data})
        result.model.save(args.model_dir)
        args.output_data_dir.mkdir(parents=True, exist_ok=True)
        (args.output_data_dir / "training_summary.json").write_text(
            json.dumps(training_summary(result), indent=2) + "\n", encoding="utf-8")
    except (HyperparameterError, ConfigError, DataError, ModelInputError) as exc:
        write_failure(args.output_dir, str(exc))
        return 1
    except Exception as exc:  # noqa: BLE001 - SageMaker reads the failure file as FailureReason
        traceback.print_exc()
        write_failure(args.output_dir, f"training failed unexpectedly: {type(exc).__name__}: {exc}")
        return 1
    print(f"train: {params.algorithm} kept {result.best_iteration} rounds; model written to {args.model_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
