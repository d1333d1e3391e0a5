"""Per-request losses from merged records, pairing on the request, sums per look, reported AUC, decisions from capture."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from sagestep.abtest import metrics


def record(i: int, prediction: float, label: float, at: float | str = 0.0) -> dict:
    return {"InferenceId": f"req-{i}", "Prediction": prediction, "Label": label, "AvailableAt": at}


@pytest.mark.parametrize(
    ("metric", "prediction", "label", "expected"),
    [
        ("brier", 0.8, 1, 0.04),
        ("brier", 0.8, 0, 0.64),
        ("log_loss", 0.8, 1, -math.log(0.8)),
        ("log_loss", 0.8, 0, -math.log(0.2)),
        ("default_rate", 0.3, 1, 1.0),  # approved (0.3 < 0.5) and defaulted
        ("default_rate", 0.7, 1, 0.0),  # declined: no default on the book
        ("default_rate", 0.3, 0, 0.0),
        ("absolute_error", 12.5, 10.0, 2.5),
    ],
)
def test_per_request_loss(metric, prediction, label, expected):
    # GIVEN one merged record WHEN its loss is computed at threshold 0.5 THEN it is the metric's value
    assert metrics.loss(metric, prediction, label, 0.5) == pytest.approx(expected)


def test_log_loss_of_a_certain_wrong_prediction_is_finite():
    # GIVEN a model that predicted 0 for a default THEN the loss is large but finite (clipped probability)
    assert math.isfinite(metrics.loss("log_loss", 0.0, 1.0, 0.5))


def test_pairs_are_joined_on_inference_id_as_challenger_minus_champion():
    # GIVEN the two models' records on overlapping requests, in different orders
    champion = [record(1, 0.2, 0, 5), record(2, 0.9, 1, 6), record(3, 0.5, 1, 7)]
    challenger = [record(2, 0.6, 1, 9), record(1, 0.1, 0, 4), record(4, 0.3, 0, 4)]
    # WHEN paired Brier differences are computed
    d, available, unpaired = metrics.paired_differences(champion, challenger, "brier", 0.5)
    # THEN d_i = loss_B − loss_A per shared request, available when both records are, the rest counted unpaired
    assert d == pytest.approx([0.01 - 0.04, 0.16 - 0.01])
    assert list(available) == [5.0, 9.0]
    assert unpaired == 2


def test_cumulative_sums_see_only_records_available_by_each_cutoff():
    # GIVEN losses that became available at different times (unsorted)
    values, at = np.array([1.0, 2.0, 3.0, 4.0]), np.array([30.0, 10.0, 20.0, 40.0])
    # WHEN summed at cutoffs 15, 30 and 45
    sums = metrics.cumulative_sums(values, at, [15.0, 30.0, 45.0])
    # THEN each look has exactly the records with AvailableAt ≤ cutoff
    assert list(sums.n) == [1, 3, 4]
    assert list(sums.total) == [2.0, 6.0, 10.0]
    assert list(sums.total_sq) == [4.0, 14.0, 30.0]


def test_iso_times_and_epoch_seconds_are_the_same_clock():
    # GIVEN the same instant written both ways THEN they parse to the same epoch seconds
    assert metrics.parse_time("2025-01-31T12:00:00Z", "t") == metrics.parse_time(1738324800, "t")


def test_auc_counts_correctly_ordered_pairs_with_ties_as_half():
    # GIVEN scores for 2 defaults and 3 non-defaults with one tie across classes
    scores, labels = np.array([0.9, 0.4, 0.4, 0.2, 0.1]), np.array([1, 1, 0, 0, 0])
    # THEN AUC = (3 + 2.5) / 6
    assert metrics.auc(scores, labels) == pytest.approx(5.5 / 6)
    assert metrics.auc(scores, np.zeros(5)) is None


def test_classification_summary_reports_default_rate_among_approved_and_decline_rate():
    # GIVEN four decisions at threshold 0.5: two approved (one defaults), two declined
    records = [record(1, 0.1, 1), record(2, 0.2, 0), record(3, 0.7, 1), record(4, 0.8, 0)]
    summary = metrics.classification_summary(records, 0.5, "champion")
    # THEN the rates are computed on the approved book and on all requests
    assert summary["DefaultRateAmongApproved"] == pytest.approx(0.5)
    assert summary["DeclineRate"] == pytest.approx(0.5)
    assert summary["AUC"] == pytest.approx(0.25)  # one of four (default, non-default) pairs ranked right


def test_a_record_without_a_label_is_reported_by_variant_index_and_field():
    # GIVEN a merged record missing its ground truth
    bad = [{"InferenceId": "x", "Prediction": 0.3, "AvailableAt": 1}]
    # THEN the error names where and what
    with pytest.raises(ValueError, match=r"records\['challenger'\]\[0\].*'Label'"):
        metrics.request_losses(bad, "brier", 0.5, "challenger")


AGE = {"Name": "Age", "Group": {"min": 25}}
MARITAL = {"Name": "Marital", "Group": {"values": ["married"]}}
FEATURES = ["Seniority", "Age", "Marital"]


def capture_line(request: str, content_type: str, response: str, inference_id: str = "r1",
                 at: str = "2026-11-22T01:00:00Z") -> str:
    return json.dumps({
        "captureData": {"endpointInput": {"observedContentType": content_type, "mode": "INPUT", "data": request,
                                          "encoding": "CSV" if "csv" in content_type else "JSON"},
                        "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                                           "data": response, "encoding": "JSON"}},
        "eventMetadata": {"eventId": "e", "inferenceId": inference_id, "inferenceTime": at}, "eventVersion": "0"})


def test_a_captured_json_request_gives_the_decision_and_each_protected_group():
    # GIVEN a captured JSON request of a 23-year-old single applicant, declined
    line = capture_line(json.dumps({"instances": [{"Seniority": 2, "Age": 23, "Marital": "single"}]}),
                        "application/json", json.dumps({"predictions": [{"score": 0.7, "decision": "decline"}]}))
    decision = metrics.captured_decision(line, FEATURES, [AGE, MARITAL], 0.5)
    # THEN the decision and group memberships are read as the fairness report defines them
    assert decision["Approved"] is False
    assert decision["Groups"] == {"Age": False, "Marital": False}
    assert decision["At"] == metrics.parse_time("2026-11-22T01:00:00Z", "t")


def test_a_captured_csv_request_is_read_in_the_models_feature_order():
    line = capture_line("4,31,married\n", "text/csv", json.dumps({"predictions": [{"score": 0.2, "decision": "approve"}]}))
    decision = metrics.captured_decision(line, FEATURES, [AGE, MARITAL], 0.5)
    assert decision["Approved"] is True and decision["Groups"] == {"Age": True, "Marital": True}


def test_a_missing_protected_value_is_counted_as_missing_not_as_a_group():
    line = capture_line(json.dumps({"instances": [{"Seniority": 2, "Age": None, "Marital": "married"}]}),
                        "application/json", json.dumps({"predictions": [{"score": 0.2, "decision": "approve"}]}))
    decisions = [metrics.captured_decision(line, FEATURES, [AGE, MARITAL], 0.5)]
    summary = metrics.decision_summary(decisions, math.inf, ["Age", "Marital"])
    assert summary["Groups"]["Age"] == {"Privileged": [0, 0], "Unprivileged": [0, 0], "Missing": 1}
    assert summary["Groups"]["Marital"]["Privileged"] == [1, 1]


def test_decision_summaries_count_only_decisions_made_by_the_cutoff():
    decisions = [{"InferenceId": str(i), "At": float(i), "Approved": i % 2 == 0, "Groups": {}} for i in range(10)]
    assert metrics.decision_summary(decisions, 4.0, []) == {"N": 5, "Approved": 3, "Groups": {}}
