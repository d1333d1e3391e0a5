"""Fixtures shared by functional tests: real models trained on the bundled credit data."""

from __future__ import annotations

import pytest

from sagestep.training.config import load_dataset_config
from sagestep.training.preprocess import prepare_data, split_data
from sagestep.training.fit import parse_hyperparameters, train_model
from tests.conftest import REPO_ROOT
from tests.functional.archives import tar_dir


@pytest.fixture(scope="module")
def trained_models(credit_data, tmp_path_factory) -> dict[str, bytes]:
    config = load_dataset_config(REPO_ROOT / "ml" / "config" / "credit_data.yaml")
    splits = split_data(prepare_data(credit_data, config), config)
    models = {}
    for name, seed in (("v1", "1"), ("v2", "2")):
        params = parse_hyperparameters({"algorithm": "lightgbm", "num_round": "80", "learning_rate": "0.1", "seed": seed})
        model = train_model(splits.train, splits.validation, config, params, log=lambda _: None).model
        directory = tmp_path_factory.mktemp(name)
        model.save(directory)
        models[name] = tar_dir(directory)
    return models
