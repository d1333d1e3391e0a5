"""Tuned vs sample hyperparameters on credit_data: test AUC of each on the same split.

The sample hyperparameters are those of events/training_state_machine_credit_data.json; the tuned ones come from the
search of events/training_state_machine_credit_data_tuning.json (its strategy, ranges and objective, validation AUC)
with the local cloud's tuning strategies (`sagestep.local.tuning.Proposer`: Bayesian = scikit-optimize's Gaussian
process) and the pipeline's own preprocessing, split and training code (`train_model`, in-process, one trial after the
other). The tuning picks its best trial by *validation* AUC, as the pipeline does; the *test* AUC of both models, on
the same held-out 20%, is the comparison. One run, both arms, so the numbers are side by side.

    .venv/bin/python -m bench.tuning_credit [--trials 24] [--seeds 7]

Writes bench/results/tuning_credit.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import pandas as pd
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24, help="tuning trials (the sample event says 8)")
    parser.add_argument("--strategy", default=None, help="override the event's strategy (Bayesian, Random)")
    args = parser.parse_args(argv)

    from sagestep.local.tuning import Proposer, parse_ranges
    from sagestep.training.config import load_dataset_config
    from sagestep.training.fit import parse_hyperparameters, train_model
    from sagestep.training.preprocess import prepare_data, split_data

    config = load_dataset_config(ROOT / "ml" / "config" / "credit_data.yaml")
    splits = split_data(prepare_data(pd.read_csv(ROOT / "data" / "credit_data" / "credit_data.csv"), config), config)
    sample_event = json.loads((ROOT / "events" / "training_state_machine_credit_data.json").read_text())
    tuning_event = json.loads((ROOT / "events" / "training_state_machine_credit_data_tuning.json").read_text())
    tuning = tuning_event["Tuning"]
    strategy = args.strategy or tuning["Strategy"]
    y_test = splits.test[config.target].to_numpy()

    def fit(hyperparameters: dict[str, str]) -> tuple[float, float]:
        params = parse_hyperparameters({"algorithm": "lightgbm", **hyperparameters})
        result = train_model(splits.train, splits.validation, config, params, log=lambda line: None)
        return result.metrics["validation_auc"], float(roc_auc_score(y_test, result.model.predict_proba(splits.test)))

    started = time.perf_counter()
    sample_validation, sample_test = fit(sample_event["Hyperparameters"])
    ranges = parse_ranges(tuning["ParameterRanges"])
    proposer = Proposer(strategy, ranges, tuning["ObjectiveMetric"]["Type"] == "Maximize", 0, None)
    trials = []
    for i in range(args.trials):
        values = proposer.propose(i)
        validation, test = fit({**tuning_event["Hyperparameters"], **values})
        proposer.observe(values, validation)
        trials.append({"values": values, "validation_auc": validation, "test_auc": test})
    best = max(trials, key=lambda t: t["validation_auc"])
    result = {
        "benchmark": "tuning_credit",
        "dataset": f"credit_data ({len(splits.train)} train / {len(splits.validation)} validation / {len(splits.test)} test rows, stratified split seed {config.split.seed})",
        "strategy": strategy, "trials": args.trials,
        "sample": {"hyperparameters": sample_event["Hyperparameters"], "validation_auc": round(sample_validation, 4),
                   "test_auc": round(sample_test, 4)},
        "tuned": {"hyperparameters": {**tuning_event["Hyperparameters"], **best["values"]},
                  "validation_auc": round(best["validation_auc"], 4), "test_auc": round(best["test_auc"], 4)},
        "test_auc_difference": round(best["test_auc"] - sample_test, 4),
        "best_test_auc_of_any_trial": round(max(t["test_auc"] for t in trials), 4),
        "all_trials": trials,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": {"python": sys.version.split()[0], "platform": platform.platform()},
    }
    out = ROOT / "bench" / "results" / "tuning_credit.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"sample hyperparameters: validation AUC {result['sample']['validation_auc']}, test AUC {result['sample']['test_auc']}")
    print(f"tuned ({strategy}, {args.trials} trials, best by validation AUC): validation AUC "
          f"{result['tuned']['validation_auc']}, test AUC {result['tuned']['test_auc']} "
          f"({result['test_auc_difference']:+.4f}); best test AUC of any trial {result['best_test_auc_of_any_trial']}")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
