from __future__ import annotations

import json

import numpy as np
import pytest

from sagestep.training.config import load_dataset_config
from sagestep.training.explain import global_explanation
from sagestep.training.preprocess import prepare_data, split_data
from sagestep.training.fit import parse_hyperparameters, train_model


@pytest.fixture(scope="module")
def trained(repo_root, credit_data):
    config = load_dataset_config(repo_root / "ml" / "config" / "credit_data.yaml")
    splits = split_data(prepare_data(credit_data, config), config)
    params = parse_hyperparameters({"algorithm": "lightgbm", "num_round": "60", "learning_rate": "0.1"})
    model = train_model(splits.train, splits.validation, config, params, log=lambda _: None).model
    return model, splits.test


def test_features_are_ranked_by_mean_absolute_shap(trained):
    # GIVEN a trained model and the test rows
    model, test = trained
    # WHEN explained
    doc = global_explanation(model, test)
    # THEN every feature is ranked once, by decreasing mean |SHAP|, and the shares sum to one
    values = [f["mean_abs_shap"] for f in doc["features"]]
    assert sorted(doc["ranking"]) == sorted(model.features)
    assert values == sorted(values, reverse=True)
    assert [f["rank"] for f in doc["features"]] == list(range(1, len(model.features) + 1))
    assert sum(f["share"] for f in doc["features"]) == pytest.approx(1.0)
    assert doc["n_rows"] == len(test) and doc["method"] == "tree_shap"
    json.dumps(doc, allow_nan=False)


def test_values_are_the_mean_of_the_per_row_contributions(trained):
    # GIVEN per-row contributions of the same rows
    model, test = trained
    contributions = model.contributions(test)
    # WHEN explained THEN mean |SHAP| and the expected value are their column means
    doc = global_explanation(model, test)
    for feature in model.features:
        assert doc["global_shap_values"][feature] == pytest.approx(np.abs(contributions[feature]).mean())
    assert doc["expected_value"] == pytest.approx(contributions["bias"].mean())
    # and a known strong credit signal ranks in the top three
    assert "Seniority" in doc["ranking"][:3] or "Income" in doc["ranking"][:3]


def test_sampling_caps_the_rows_explained(trained):
    model, test = trained
    assert global_explanation(model, test, max_rows=100, seed=1)["n_rows"] == 100
