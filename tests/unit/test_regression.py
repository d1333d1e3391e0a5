"""problem_type Regression: config rules, the naive seasonal forecast, the gate and the serving answer."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from sagestep.training.config import ConfigError, dataset_config_from_dict
from sagestep.training.gate import decide, headline
from sagestep.training.metrics import naive_seasonal_forecast, regression_extras
from tests.conftest import REPO_ROOT


def chicago() -> dict:
    return yaml.safe_load((REPO_ROOT / "ml" / "config" / "chicago.yaml").read_text())


@pytest.mark.parametrize(("change", "message"), [
    (lambda c: c.update(positive_label="high"), "positive_label must be null for a Regression"),
    (lambda c: c["thresholds"].update(min_auc=0.8), "thresholds.min_auc is not a known key"),
    (lambda c: c["thresholds"].update(naive_lag_days=0), "naive_lag_days must be a whole number of days >= 1"),
    (lambda c: c.update(protected_attributes=[{"name": "temp", "privileged": {"min": 0}}]), "must be empty for a Regression"),
])
def test_a_regression_config_names_the_field_and_the_fix(change, message):
    config = chicago()
    change(config)
    with pytest.raises(ConfigError, match=message):
        dataset_config_from_dict(config, source="chicago.yaml")


def test_the_chicago_config_round_trips():
    config = dataset_config_from_dict(chicago())
    assert config.is_regression and dataset_config_from_dict(config.to_dict()).to_dict() == config.to_dict()


def test_naive_forecast_is_the_target_on_the_same_weekday_a_year_earlier():
    config = dataset_config_from_dict(chicago())
    known = pd.DataFrame({"date": ["2015-03-02", "2015-03-03"], "ridership": [14.0, 15.0]})
    rows = pd.DataFrame({"date": ["2016-02-29", "2016-03-01", "2016-03-02"], "ridership": [15.0, 16.0, 9.0]})
    naive = naive_seasonal_forecast(rows, known, config)
    assert naive[:2].tolist() == [14.0, 15.0] and np.isnan(naive[2])  # 364 days back: Monday → Monday
    extras = regression_extras(rows["ridership"], [15.5, 15.5, 9.0], naive)
    assert extras["naive_rows"] == 2 and extras["naive_rmse"] == pytest.approx(1.0)
    assert extras["error_ratio_to_naive"] == pytest.approx(0.5)


def summary(rmse: float, naive: float) -> dict:
    return {"rmse": rmse, "mae": rmse * 0.7, "rmse_on_naive_rows": rmse, "naive_rmse": naive,
            "error_ratio_to_naive": rmse / naive}


def test_the_gate_refuses_a_regressor_worse_than_the_naive_forecast_or_the_champion():
    config = dataset_config_from_dict(chicago())
    report = {"passed": True, "checks": []}
    assert decide(summary(2.0, 2.1), report, config, None)["Passed"] is True
    worse = decide(summary(2.2, 2.1), report, config, None)
    assert worse["Passed"] is False and "above max_error_ratio_to_naive 1" in worse["Reasons"][0]
    champion = {"ModelPackageArn": "arn:champion", "CustomerMetadataProperties": {"TestRmse": "1.8"}}
    beaten = decide(summary(2.0, 2.1), report, config, champion)  # 2.0 > 1.8 × 1.05
    assert beaten["Passed"] is False and "champion RMSE 1.8000" in beaten["Reasons"][0]
    assert decide(summary(1.85, 2.1), report, config, champion)["Passed"] is True
    assert headline(summary(1.85, 2.1), config).startswith("Test RMSE 1.8500 (naive seasonal forecast 2.1000)")


def test_a_regressor_serves_one_prediction_per_row(tmp_path):
    from sagestep.serving.inference import format_response, load_model, parse_request, predict
    from sagestep.training.fit import parse_hyperparameters, train_model
    from sagestep.training.preprocess import prepare_data, split_data

    config = dataset_config_from_dict(chicago())
    rows = prepare_data(pd.read_csv(REPO_ROOT / "data" / "chicago" / "chicago.csv", nrows=1500), config)
    splits = split_data(rows, config)
    params = parse_hyperparameters({"algorithm": "xgboost", "num_round": "20", "early_stopping_rounds": "5"})
    train_model(splits.train, splits.validation, config, params, log=lambda line: None).model.save(tmp_path)
    model = load_model(tmp_path)
    body = splits.test[list(config.input_columns)].head(3).to_csv(index=False, header=False)
    predictions = predict(parse_request(body, "text/csv"), model)
    payload, kind = format_response(predictions, "application/json")
    answer = json.loads(payload)["predictions"]
    assert kind == "application/json" and len(answer) == 3
    assert all(set(p) == {"prediction"} and 2 < p["prediction"] < 30 for p in answer)
    assert format_response(predictions, "text/csv")[0].decode().count("\n") == 3


def test_monitoring_reads_a_regressors_captured_prediction_and_traffic_keeps_true_values(tmp_path):
    from sagestep.local.traffic import load_rows
    from sagestep.monitoring.merged import parse_score

    assert parse_score('{"predictions":[{"prediction":16.25}]}') == 16.25
    assert parse_score("16.25\n") == 16.25
    rows = REPO_ROOT / "data" / "chicago" / "chicago.csv"
    sample = tmp_path / "days.csv"
    pd.read_csv(rows, nrows=5).to_csv(sample, index=False)
    loaded = load_rows(sample, dataset_config=REPO_ROOT / "ml" / "config" / "chicago.yaml")
    assert loaded.labels == pd.read_csv(rows, nrows=5)["ridership"].tolist()
    assert "date" in loaded.features and "ridership" not in loaded.features
