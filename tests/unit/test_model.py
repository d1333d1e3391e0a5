from __future__ import annotations

import json
import statistics
import time

import numpy as np
import pytest

from sagestep.training.config import load_dataset_config
from sagestep.training.model import BIAS_COLUMN, MODEL_META_FILE, ModelInputError, ScoringModel
from sagestep.training.preprocess import prepare_data, split_data
from sagestep.training.fit import parse_hyperparameters, train_model

TRAINING_DATA = {"train": [{"path": "train.csv", "sha256": "ab" * 32, "size_bytes": 10, "rows": 2895}]}


@pytest.fixture(scope="module")
def config(repo_root):
    return load_dataset_config(repo_root / "ml" / "config" / "credit_data.yaml")


@pytest.fixture(scope="module")
def splits(credit_data, config):
    return split_data(prepare_data(credit_data, config), config)


@pytest.fixture(scope="module", params=["lightgbm", "xgboost"])
def model(request, splits, config) -> ScoringModel:
    params = parse_hyperparameters({"algorithm": request.param, "num_round": "60", "learning_rate": "0.1"})
    result = train_model(splits.train, splits.validation, config, params, log=lambda _: None,
                         metadata={"training_data": TRAINING_DATA})
    return result.model


@pytest.fixture(scope="module")
def test_rows(splits):
    return splits.test.iloc[:50].reset_index(drop=True)


def test_saved_model_reloads_with_identical_scores(tmp_path, model, test_rows):
    # GIVEN a trained model saved to a directory
    model.save(tmp_path)
    # WHEN loaded again
    loaded = ScoringModel.load(tmp_path)
    # THEN it scores exactly as before and keeps its attributes
    np.testing.assert_array_equal(loaded.predict_proba(test_rows), model.predict_proba(test_rows))
    assert (loaded.features, loaded.categorical, loaded.threshold, loaded.algorithm, loaded.positive_label) == (
        model.features, model.categorical, model.threshold, model.algorithm, model.positive_label)
    booster_file = {"lightgbm": "model.txt", "xgboost": "model.json"}[model.algorithm]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([booster_file, MODEL_META_FILE])


def test_model_meta_holds_what_serving_and_lineage_need(tmp_path, model):
    # GIVEN a saved model WHEN its metadata file is read
    model.save(tmp_path)
    meta = json.loads((tmp_path / MODEL_META_FILE).read_text())
    # THEN it holds features, types, category mappings, threshold, algorithm, label, hyperparameters,
    # best iteration and the training data hashes
    assert meta["features"][:2] == ["Seniority", "Time"]
    assert meta["feature_types"]["Home"] == "categorical" and meta["feature_types"]["Income"] == "numeric"
    assert meta["categorical"]["Marital"] == ["divorced", "married", "separated", "single", "widow"]
    assert meta["threshold"] == model.threshold == 0.5 and meta["positive_label"] == "bad" and meta["algorithm"] == model.algorithm
    assert meta["hyperparameters"]["num_round"] == 60
    assert 1 <= meta["best_iteration"] <= 60
    assert meta["training_data"] == TRAINING_DATA


def test_unseen_category_scores_like_a_missing_value(model, test_rows):
    # GIVEN one applicant with a Home value never seen in training, and the same applicant with Home missing
    unseen, missing = test_rows.iloc[[0]].copy(), test_rows.iloc[[0]].copy()
    unseen["Home"] = "houseboat"
    missing["Home"] = None
    # WHEN scored THEN both get the same score
    assert model.predict_proba(unseen)[0] == model.predict_proba(missing)[0]


def test_raw_csv_row_scores_like_the_dataframe_row(model, test_rows):
    # GIVEN the first test rows as raw CSV text values in feature order (as an endpoint receives them)
    csv_rows = [["" if v is None or v != v else str(v) for v in row] for row in test_rows[model.features].to_numpy(object)]
    # WHEN scored through the row path and the DataFrame path THEN the scores agree
    np.testing.assert_allclose(model.predict_proba(csv_rows), model.predict_proba(test_rows), rtol=0, atol=1e-12)
    np.testing.assert_allclose(model.predict_proba(np.array(csv_rows, dtype=object)), model.predict_proba(test_rows))


def test_large_batches_take_the_vectorised_path_with_identical_scores(model, splits):
    # GIVEN the whole test split (above the row-path size) WHEN scored as a frame and row by row
    batch = model.predict_proba(splits.test)
    rows = np.concatenate([model.predict_proba(splits.test.iloc[i:i + 1]) for i in range(0, 200, 7)])
    # THEN the two encoders agree
    np.testing.assert_allclose(batch[0:200:7], rows, rtol=0, atol=1e-12)
    assert batch.shape == (len(splits.test),) and ((batch > 0) & (batch < 1)).all()


def test_json_records_must_name_every_feature(model, test_rows):
    # GIVEN JSON-like records, one without Income
    records = test_rows[model.features].iloc[:2].to_dict(orient="records")
    np.testing.assert_allclose(model.predict_proba(records), model.predict_proba(test_rows.iloc[:2]))
    del records[1]["Income"]
    # WHEN scored THEN the error names the missing feature
    with pytest.raises(ModelInputError, match=r"record 1 has no \['Income'\]"):
        model.predict_proba(records)


def test_text_in_numeric_feature_names_the_feature(model, test_rows):
    # GIVEN a raw row with text where Age is expected
    row = list(test_rows[model.features].iloc[0])
    row[model.features.index("Age")] = "forty"
    # WHEN scored THEN the error names the feature and the value
    with pytest.raises(ModelInputError, match=r"feature 'Age' must be numeric, got 'forty'"):
        model.predict_proba([row])


def test_row_of_wrong_width_lists_the_expected_order(model):
    with pytest.raises(ModelInputError, match=r"a row has 3 values but the model has 13 features"):
        model.predict_proba([[1, 2, 3]])


def test_contributions_sum_to_the_log_odds_of_the_score(model, test_rows):
    # GIVEN test rows WHEN their SHAP contributions are computed
    contributions = model.contributions(test_rows)
    # THEN there is one column per feature plus bias, and each row sums to logit(score)
    assert list(contributions.columns) == [*model.features, BIAS_COLUMN]
    p = model.predict_proba(test_rows)
    np.testing.assert_allclose(contributions.sum(axis=1), np.log(p / (1 - p)), atol=1e-4)


def test_reason_codes_are_the_largest_positive_contributions(model, test_rows):
    # GIVEN test rows WHEN the top-3 reasons are asked
    reasons = model.reason_codes(test_rows, k=3)
    contributions = model.contributions(test_rows)
    # THEN each row lists at most 3 features, all pushing toward decline, in decreasing order
    assert len(reasons) == len(test_rows)
    for i, names in enumerate(reasons):
        values = [contributions.loc[i, n] for n in names]
        assert len(names) <= 3 and all(v > 0 for v in values) and values == sorted(values, reverse=True)
        positives = contributions.loc[i, model.features]
        assert len(names) == min(3, int((positives > 0).sum()))
        if names:
            assert names[0] == positives.idxmax()


def test_one_row_scores_in_under_two_milliseconds(model, test_rows):
    # GIVEN one raw applicant row (the online serving path)
    row = [list(test_rows[model.features].iloc[0])]
    model.predict_proba(row)
    # WHEN scored repeatedly
    durations = []
    for _ in range(200):
        start = time.perf_counter()
        model.predict_proba(row)
        durations.append(time.perf_counter() - start)
    # THEN the median call takes under 2 ms
    assert statistics.median(durations) < 0.002


def test_load_of_a_directory_without_metadata_says_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"model_meta.json: not found; .*extract model.tar.gz"):
        ScoringModel.load(tmp_path)
