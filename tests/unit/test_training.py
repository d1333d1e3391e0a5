from __future__ import annotations

import re

import pytest

from sagestep.training.config import load_dataset_config
from sagestep.training.model import normalize_categories
from sagestep.training.preprocess import prepare_data, split_data
from sagestep.training.fit import (
    HYPERPARAMETERS,
    HyperparameterError,
    hyperparameter_help,
    metric_lines,
    parse_hyperparameters,
    train_model,
)

# The state machine's MetricDefinitions.
METRIC_REGEXES = {
    "train:auc": r"train:auc=([0-9.]+);",
    "validation:auc": r"validation:auc=([0-9.]+);",
    "validation:logloss": r"validation:logloss=([0-9.]+);",
}


@pytest.fixture(scope="module")
def config(repo_root):
    return load_dataset_config(repo_root / "ml" / "config" / "credit_data.yaml")


@pytest.fixture(scope="module")
def splits(credit_data, config):
    return split_data(prepare_data(credit_data, config), config)


def test_string_hyperparameters_are_typed_and_defaults_filled():
    # GIVEN SageMaker-style string hyperparameters
    params = parse_hyperparameters({"algorithm": "lightgbm", "num_round": "300", "learning_rate": "0.1"})
    # THEN they are typed, the unset ones take the documented defaults, and the given ones are recorded
    assert params.algorithm == "lightgbm"
    assert params["num_round"] == 300 and isinstance(params["num_round"], int)
    assert params["learning_rate"] == 0.1
    assert params["num_leaves"] == next(p.default for p in HYPERPARAMETERS["lightgbm"] if p.name == "num_leaves")
    assert params.given == ("learning_rate", "num_round")


def test_unknown_hyperparameter_is_named_with_the_allowed_ones():
    # GIVEN a misspelt hyperparameter WHEN parsed THEN it is named and the allowed names listed
    with pytest.raises(HyperparameterError) as err:
        parse_hyperparameters({"algorithm": "lightgbm", "num_leafs": "31"})
    message = str(err.value)
    assert message.startswith("unknown hyperparameter 'num_leafs' for algorithm lightgbm; allowed: ")
    assert "'num_leaves'" in message and "'learning_rate'" in message


def test_hyperparameter_of_the_other_algorithm_is_unknown():
    # GIVEN an XGBoost-only name with LightGBM WHEN parsed THEN it is refused
    with pytest.raises(HyperparameterError, match="unknown hyperparameter 'subsample' for algorithm lightgbm"):
        parse_hyperparameters({"algorithm": "lightgbm", "subsample": "0.8"})


@pytest.mark.parametrize(
    ("name", "value", "rule"),
    [
        ("learning_rate", "2", r"float in \(0, 1\]"),
        ("learning_rate", "fast", r"float in \(0, 1\]"),
        ("num_round", "10.5", r"int in \[1, 100000\]"),
        ("max_depth", "-3", r"int in \[-1, 64\]"),
    ],
)
def test_out_of_range_or_wrong_type_value_states_the_rule(name, value, rule):
    with pytest.raises(HyperparameterError, match=rf"hyperparameter {name} must be {rule}, got '{re.escape(value)}'"):
        parse_hyperparameters({"algorithm": "lightgbm", name: value})


def test_algorithm_is_required_and_checked():
    # GIVEN no algorithm, then an unsupported one WHEN parsed THEN each error says what to set
    with pytest.raises(HyperparameterError, match=r"algorithm is required; set it to one of \['lightgbm', 'xgboost'\]"):
        parse_hyperparameters({"num_round": "10"})
    with pytest.raises(HyperparameterError, match=r"algorithm must be one of \['lightgbm', 'xgboost'\], got 'catboost'"):
        parse_hyperparameters({"algorithm": "catboost"})


def test_sdk_quoted_values_and_platform_keys_are_accepted():
    # GIVEN values JSON-quoted by the SageMaker SDK and keys the platform adds
    params = parse_hyperparameters({
        "algorithm": '"xgboost"', "max_depth": '"5"', "sagemaker_program": '"train.py"',
        "_tuning_objective_metric": "validation:auc",
    })
    # THEN the quotes are stripped and the platform keys ignored
    assert params.algorithm == "xgboost" and params["max_depth"] == 5


def test_help_documents_every_allowed_hyperparameter():
    assert set(hyperparameter_help("xgboost")) == {p.name for p in HYPERPARAMETERS["xgboost"]}
    assert hyperparameter_help("lightgbm")["learning_rate"] == "float in (0, 1], default 0.05"


def test_lightgbm_logs_metric_lines_the_state_machine_can_parse(splits, config):
    # GIVEN a short LightGBM run
    lines: list[str] = []
    params = parse_hyperparameters({"algorithm": "lightgbm", "num_round": "40", "early_stopping_rounds": "40"})
    # WHEN trained
    result = train_model(splits.train, splits.validation, config, params, log=lines.append)
    # THEN validation auc is logged every 10 rounds, and the final lines carry the kept model's metrics
    per_round = [line for line in lines if line.startswith("[")]
    assert [line.split("]")[0] for line in per_round] == ["[10", "[20", "[30", "[40"]
    for name, regex in METRIC_REGEXES.items():
        values = [float(m.group(1)) for line in lines for m in [re.search(regex, line)] if m]
        assert values, f"no {name} line"
        assert values[-1] == pytest.approx(result.metrics[name.replace(":", "_")], abs=1e-6)
    assert lines[-4:] == metric_lines(result.metrics)
    assert 0.75 < result.metrics["validation_auc"] <= 1


def test_early_stopping_keeps_only_the_best_rounds(splits, config):
    # GIVEN a fast learning rate, many rounds and a short patience
    params = parse_hyperparameters({"algorithm": "lightgbm", "learning_rate": "0.5", "num_round": "1000",
                                    "early_stopping_rounds": "5"})
    # WHEN trained
    result = train_model(splits.train, splits.validation, config, params, log=lambda _: None)
    # THEN training stopped early and the saved booster holds exactly the best rounds
    assert result.best_iteration < 100
    assert result.model.booster.num_trees() == result.best_iteration
    best_in_history = max(result.history, key=lambda row: row["validation_auc"])["iteration"]
    assert result.best_iteration == best_in_history


def test_xgboost_trains_with_native_categorical_features(splits, config):
    # GIVEN XGBoost with a few rounds
    params = parse_hyperparameters({"algorithm": "xgboost", "num_round": "30", "early_stopping_rounds": "10"})
    # WHEN trained
    result = train_model(splits.train, splits.validation, config, params, log=lambda _: None)
    # THEN the booster keeps the best rounds and knows which features are categorical
    assert result.model.booster.num_boosted_rounds() == result.best_iteration <= 30
    types = dict(zip(result.model.booster.feature_names, result.model.booster.feature_types))
    assert types["Home"] == "c" and types["Income"] == "q"
    assert result.metrics["validation_auc"] > 0.75


def test_category_mapping_comes_from_training_data_only(splits, config):
    # GIVEN training data WHEN a model is trained
    params = parse_hyperparameters({"algorithm": "lightgbm", "num_round": "5"})
    result = train_model(splits.train, splits.validation, config, params, log=lambda _: None)
    # THEN each categorical feature's mapping is the sorted set of its training values
    for feature in config.features.categorical:
        expected = sorted(set(normalize_categories(splits.train[feature]).dropna()))
        assert result.model.categorical[feature] == expected
    assert result.model.metadata["hyperparameters"]["algorithm"] == "lightgbm"


def test_validation_with_one_class_is_refused(splits, config):
    # GIVEN a validation set holding only good applicants
    only_good = splits.validation[splits.validation["Status"] == 0]
    params = parse_hyperparameters({"algorithm": "lightgbm", "num_round": "5"})
    # WHEN training THEN the error explains why
    with pytest.raises(ValueError, match="validation data holds one class only"):
        train_model(splits.train, only_good, config, params, log=lambda _: None)
