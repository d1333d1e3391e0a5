from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import ks_2samp
from sklearn.metrics import roc_auc_score

from sagestep.training.metrics import (
    BINARY_METRICS,
    binary_classification_statistics,
    binary_point_metrics,
    calibration,
    credit_metrics,
    gini,
    ks_statistic,
    model_quality_constraints,
    regression_statistics,
)


@pytest.fixture(scope="module")
def labelled_scores(credit_data):
    """Real labels (1 = bad) and a real, simple score: short employment and no assets look risky."""
    y = (credit_data["Status"] == "bad").to_numpy(int)
    risk = 1.0 / (1.0 + credit_data["Seniority"].to_numpy(float)) + 0.3 * (credit_data["Records"] == "yes")
    score = risk / risk.max()
    return y, score


def test_statistics_follow_the_model_quality_format(labelled_scores):
    # GIVEN real labels and scores
    y, score = labelled_scores
    # WHEN the statistics are computed at threshold 0.35
    doc = binary_classification_statistics(y, score, 0.35)
    # THEN the document has the Model Monitor shape and is plain JSON
    assert doc["version"] == 0.0 and doc["dataset"] == {"item_count": len(y)}
    metrics = doc["binary_classification_metrics"]
    for name in BINARY_METRICS:
        assert set(metrics[name]) == {"value", "standard_deviation"}
        assert set(metrics[f"{name}_best_constant_classifier"]) == {"value", "standard_deviation"}
    matrix = metrics["confusion_matrix"]
    assert sum(matrix[a][p] for a in "01" for p in "01") == len(y)
    assert matrix["1"]["0"] + matrix["1"]["1"] == y.sum()
    assert len(metrics["receiver_operating_characteristic_curve"]["false_positive_rates"]) <= 201
    assert set(metrics["precision_recall_curve"]) == {"precisions", "recalls"}
    json.dumps(doc, allow_nan=False)


def test_auc_matches_scikit_learn_and_std_comes_from_subsamples(labelled_scores):
    y, score = labelled_scores
    doc = binary_classification_statistics(y, score, 0.35)["binary_classification_metrics"]
    assert doc["auc"]["value"] == pytest.approx(roc_auc_score(y, score))
    assert 0 < doc["auc"]["standard_deviation"] < 0.05


def test_documented_example_is_reproduced():
    # GIVEN the four rows of the AWS documentation example (confusion matrix {"0":{"0":1,"1":2},"1":{"0":0,"1":1}})
    y = np.array([0, 0, 0, 1])
    score = np.array([0.2, 0.7, 0.8, 0.9])
    # WHEN evaluated at 0.5
    m = binary_classification_statistics(y, score, 0.5)["binary_classification_metrics"]
    # THEN the values match the documented ones, including the best constant classifier (always positive)
    assert m["confusion_matrix"] == {"0": {"0": 1, "1": 2}, "1": {"0": 0, "1": 1}}
    assert (m["recall"]["value"], m["precision"]["value"], m["accuracy"]["value"]) == (1.0, pytest.approx(1 / 3), 0.5)
    assert m["recall_best_constant_classifier"]["value"] == 1.0
    assert m["precision_best_constant_classifier"]["value"] == 0.25
    assert m["accuracy_best_constant_classifier"]["value"] == 0.25
    assert m["true_negative_rate"]["value"] == pytest.approx(1 / 3)
    assert m["false_positive_rate"]["value"] == pytest.approx(2 / 3)
    # and with fewer than 200 rows the standard deviation is the string "NaN"
    assert m["auc"]["standard_deviation"] == "NaN"


def test_point_metrics_f_scores_weight_precision_and_recall(labelled_scores):
    y, score = labelled_scores
    m = binary_point_metrics(y, score, 0.35)
    p, r = m["precision"], m["recall"]
    assert m["f1"] == pytest.approx(2 * p * r / (p + r))
    assert m["f2"] == pytest.approx(5 * p * r / (4 * p + r))
    assert m["f0_5"] == pytest.approx(1.25 * p * r / (0.25 * p + r))
    assert m["false_negative_rate"] == pytest.approx(1 - r)


def test_ks_is_the_two_sample_statistic_and_gini_is_2auc_minus_1(labelled_scores):
    y, score = labelled_scores
    assert ks_statistic(y, score) == pytest.approx(ks_2samp(score[y == 1], score[y == 0]).statistic)
    assert gini(y, score) == pytest.approx(2 * roc_auc_score(y, score) - 1)
    assert set(credit_metrics(y, score)) == {"ks", "gini", "brier"}


def test_calibration_table_covers_every_row(labelled_scores):
    # GIVEN real labels and scores WHEN the reliability table is built
    y, score = labelled_scores
    table = calibration(y, score, n_bins=10)
    # THEN bins hold every row, their observed rates average to the base rate and Brier is the mean square error
    assert sum(b["count"] for b in table["bins"]) == len(y)
    weighted = sum(b["count"] * b["observed_rate"] for b in table["bins"]) / len(y)
    assert weighted == pytest.approx(y.mean())
    assert table["brier_score"] == pytest.approx(np.mean((score - y) ** 2))
    assert all(b["lower"] <= b["mean_score"] <= b["upper"] for b in table["bins"])


def test_regression_metrics_have_known_values():
    # GIVEN a prediction off by one on one of four rows
    doc = regression_statistics([1, 2, 3, 4], [1, 2, 3, 5])
    m = doc["regression_metrics"]
    # THEN mae = mse = 0.25, rmse = 0.5, r2 = 1 - 0.25·4/5, and std is "NaN" below 200 rows
    assert (m["mae"]["value"], m["mse"]["value"], m["rmse"]["value"]) == (0.25, 0.25, 0.5)
    assert m["r2"]["value"] == pytest.approx(0.8)
    assert m["rmse"]["standard_deviation"] == "NaN" and doc["dataset"]["item_count"] == 4


def test_constraints_use_explicit_thresholds_and_direction_per_metric(labelled_scores):
    # GIVEN statistics of real scores
    y, score = labelled_scores
    stats = binary_classification_statistics(y, score, 0.35)
    # WHEN constraints are derived with min AUC 0.8 and a 3-sigma band elsewhere
    doc = model_quality_constraints(stats, thresholds={"auc": 0.8}, metrics=["auc", "f1", "false_positive_rate"],
                                    std_multiplier=3)
    c = doc["binary_classification_constraints"]
    m = stats["binary_classification_metrics"]
    # THEN auc uses the explicit threshold, f1 a lower band and the error rate an upper band
    assert doc["version"] == 0.0
    assert c["auc"] == {"threshold": 0.8, "comparison_operator": "LessThanThreshold"}
    assert c["f1"]["threshold"] == pytest.approx(m["f1"]["value"] - 3 * m["f1"]["standard_deviation"])
    assert c["false_positive_rate"]["comparison_operator"] == "GreaterThanThreshold"
    assert c["false_positive_rate"]["threshold"] > m["false_positive_rate"]["value"]


def test_regression_constraints_flag_errors_that_grow():
    doc = model_quality_constraints(regression_statistics([1, 2, 3, 4], [1, 2, 3, 5]))
    assert doc["regression_constraints"]["mae"] == {"threshold": 0.25, "comparison_operator": "GreaterThanThreshold"}
    assert doc["regression_constraints"]["r2"]["comparison_operator"] == "LessThanThreshold"


def test_constraint_on_an_unknown_metric_is_refused(labelled_scores):
    y, score = labelled_scores
    with pytest.raises(ValueError, match="metric 'aucc' is not in the statistics"):
        model_quality_constraints(binary_classification_statistics(y, score, 0.5), thresholds={"aucc": 0.8})


def test_missing_labels_are_refused():
    with pytest.raises(ValueError, match="drop rows without ground truth"):
        binary_classification_statistics([0, 1, np.nan], [0.1, 0.2, 0.3], 0.5)
