"""A regressor trained on the early Chicago years and monitored on the later ones: the real upward trend in
ridership (yearly mean 11.8 → 16.4) must show as data drift and as a model-quality violation, with the same
functions the pipeline's jobs run (evaluate's constraints, the data-quality and model-quality monitors)."""

from __future__ import annotations

import importlib.util
import sys

import pandas as pd
import pytest

from sagestep.monitoring.baseline import build_baseline
from sagestep.monitoring.data_quality import run_data_quality
from sagestep.monitoring.model_quality import run_model_quality
from sagestep.training.config import load_dataset_config
from sagestep.training.fit import parse_hyperparameters, train_model
from sagestep.training.preprocess import prepare_data, split_data
from tests.conftest import REPO_ROOT


def _evaluate_module():
    spec = importlib.util.spec_from_file_location("ml_evaluate_drift", REPO_ROOT / "ml" / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.fixture(scope="module")
def chicago_years():
    config = load_dataset_config(REPO_ROOT / "ml" / "config" / "chicago.yaml")
    rows = prepare_data(pd.read_csv(REPO_ROOT / "data" / "chicago" / "chicago.csv"), config)
    year = pd.to_datetime(rows["date"]).dt.year
    return config, rows[year <= 2008].reset_index(drop=True), rows[year >= 2014].reset_index(drop=True)


def test_a_regressor_of_the_early_years_drifts_and_loses_quality_on_the_later_years(chicago_years):
    # GIVEN a LightGBM regressor trained on 2001–2008 and registered with its evaluation's constraints
    config, early, later = chicago_years
    splits = split_data(early, config)
    params = parse_hyperparameters({"algorithm": "lightgbm", "num_round": "80", "learning_rate": "0.1",
                                    "early_stopping_rounds": "20", "seed": "7"})
    model = train_model(splits.train, splits.validation, config, params, log=lambda line: None).model
    evaluation = _evaluate_module().evaluate_regression(model, splits.test, config,
                                                       pd.concat([splits.train, splits.validation]))
    constraints = evaluation.constraints
    assert set(constraints["regression_constraints"]) == {"mae", "rmse", "r2"}
    baseline_statistics, baseline_constraints = build_baseline(
        splits.train, numeric=list(config.features.numeric), categorical=list(config.features.categorical))

    # WHEN 2014–2016 traffic is monitored: its inputs, and its predictions merged with the true ridership
    data_violations = run_data_quality(later[list(config.features.all)], baseline_statistics,
                                       baseline_constraints).violations["violations"]
    predicted = model.predict(later)
    statistics, quality = run_model_quality(later[config.target].to_numpy(), predicted, constraints, "Regression")

    # THEN the lagged ridership of the stations drifted (the trend), and the error broke the constraints
    drifted = {v["feature_name"] for v in data_violations if v["constraint_check_type"] == "baseline_drift_check"}
    assert "Clark_Lake" in drifted, data_violations
    broken = {v["metric_name"] for v in quality["violations"]}
    assert {"mae", "rmse"} <= broken, quality
    assert statistics["regression_metrics"]["rmse"]["value"] > constraints["regression_constraints"]["rmse"]["threshold"]
    # AND the same model on its own period's held-out days met them (the violation is the drift, not the model)
    own = run_model_quality(splits.test[config.target].to_numpy(), model.predict(splits.test), constraints,
                            "Regression")[1]
    assert own["violations"] == []
