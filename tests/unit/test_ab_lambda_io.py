"""Pure parts of the ab_winner Lambda and the local traffic: reading merged records and held-out rows."""

from __future__ import annotations

import base64
import json

import pytest

from sagestep.abtest.lambda_io import merged_record, model_records, score_of
from sagestep.local.traffic import TrafficInputError, load_rows
from tests.conftest import REPO_ROOT


def test_score_is_read_from_the_json_predictions_or_a_bare_number():
    assert score_of('{"predictions": [{"score": 0.31, "decision": "approve"}]}') == pytest.approx(0.31)
    assert score_of("0.83\n") == pytest.approx(0.83)


def test_merged_record_gives_prediction_label_and_availability():
    output = json.dumps({"predictions": [{"score": 0.7}]}).encode()
    line = json.dumps({
        "captureData": {"endpointOutput": {"data": base64.b64encode(output).decode(), "encoding": "BASE64"}},
        "eventMetadata": {"eventId": "e1", "inferenceId": "r1", "inferenceTime": "2026-11-22T01:00:00Z"},
        "groundTruthData": {"data": "1", "encoding": "CSV"},
    })
    assert merged_record(line, "2026-11-22T01:05:00+00:00") == {
        "InferenceId": "r1", "Prediction": 0.7, "Label": 1.0, "AvailableAt": "2026-11-22T01:05:00+00:00"}


def test_rows_take_the_target_and_id_from_the_dataset_config(tmp_path):
    path = tmp_path / "test.csv"
    path.write_text("application_id,Status,Seniority,Home\n1,bad,9,rent\n2,good,,owner\n")
    rows = load_rows(path, dataset_config=REPO_ROOT / "ml" / "config" / "credit_data.yaml")
    assert rows.labels == [1, 0] and rows.features == ["Seniority", "Home"]
    assert rows.instances[1] == {"Seniority": None, "Home": "owner"}


def test_rows_without_a_known_label_column_name_the_fix(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(TrafficInputError, match="--target or --dataset-config"):
        load_rows(path)


def test_split_traffic_pairs_each_variants_labelled_requests_with_the_other_models_replayed_score():
    # GIVEN labelled requests decided by each variant, and the replays of the other model on them
    merged = {"champion": [{"InferenceId": "a1", "Prediction": 0.2, "Label": 0.0, "AvailableAt": 1}],
              "challenger": [{"InferenceId": "b1", "Prediction": 0.4, "Label": 1.0, "AvailableAt": 2},
                             {"InferenceId": "b2", "Prediction": 0.1, "Label": 0.0, "AvailableAt": 2}]}
    replays = {"champion": {"a1": 0.3}, "challenger": {"b1": 0.6}}  # b2's replay failed
    records = model_records("split", merged, replays)
    # THEN each model has its score on every request that both scored, with who decided it
    assert {(r["InferenceId"], r["Prediction"], r["ServedBy"]) for r in records["champion"]} == {
        ("a1", 0.2, "champion"), ("b1", 0.6, "challenger")}
    assert {(r["InferenceId"], r["Prediction"], r["ServedBy"]) for r in records["challenger"]} == {
        ("a1", 0.3, "champion"), ("b1", 0.4, "challenger"), ("b2", 0.1, "challenger")}


def test_shadow_traffic_pairs_the_shadow_scores_with_the_champions_decisions():
    merged = {"champion": [{"InferenceId": "a1", "Prediction": 0.2, "Label": 0.0, "AvailableAt": 1}],
              "challenger": [{"InferenceId": "a1", "Prediction": 0.3, "Label": 0.0, "AvailableAt": 1}]}
    records = model_records("shadow", merged, {})
    assert [r["ServedBy"] for r in records["champion"] + records["challenger"]] == ["champion", "champion"]
