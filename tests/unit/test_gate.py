from __future__ import annotations

import copy

import pytest

from sagestep.training.config import load_dataset_config
from sagestep.training.gate import (
    MAX_ENTRIES,
    MAX_KEY_LENGTH,
    MAX_VALUE_LENGTH,
    GateEventError,
    QualityGateEvent,
    decide,
    fairness_key,
    registry_metadata,
)
from sagestep.training.preprocess import validate_data

PASSING_SUMMARY = {
    "auc": 0.85, "ks": 0.55, "gini": 0.70,
    "disparate_impact[Age]": 0.91, "disparate_impact[Marital]": 0.95,
}
SHA = "0" * 64
MANIFEST = {
    "code": {"version": "0.1.0", "sha256": "c" * 64},
    "config": {"sha256": "d" * 64},
    "inputs": [{"path": "credit_data.csv", "sha256": "a" * 64}],
    "outputs": {"train": {"sha256": "1" * 64}, "validation": {"sha256": "2" * 64}, "test": {"sha256": "3" * 64}},
}
EVENT = {
    "EvaluationS3Uri": "s3://artifacts/runs/exec-1/evaluation/",
    "PreprocessS3Uri": "s3://artifacts/runs/exec-1/preprocess/",
    "TrainingJobName": "exec-1-train",
    "HyperParameters": {"algorithm": "lightgbm", "num_round": "300"},
    "ModelDataUrl": "s3://artifacts/runs/exec-1/train/exec-1-train/output/model.tar.gz",
    "ExecutionArn": "arn:aws:states:us-east-1:123456789012:execution:TrainingStateMachine:exec-1",
    "DataS3Uri": "s3://data/credit/",
    "DatasetConfigS3Uri": "s3://data/configs/credit_data.yaml",
    "CodeS3Uri": "s3://artifacts/code/sagestep-0.1.0.tar.gz",
    "RunS3Uri": "s3://artifacts/runs/exec-1/",
}


@pytest.fixture(scope="module")
def config(repo_root):
    return load_dataset_config(repo_root / "ml" / "config" / "credit_data.yaml")


@pytest.fixture(scope="module")
def passing_report(credit_data, config):
    return validate_data({"credit_data.csv": credit_data}, config)


def metadata(**overrides) -> dict[str, str]:
    args = dict(
        execution_arn=EVENT["ExecutionArn"], dataset_name="credit_data", data_s3_uri=EVENT["DataS3Uri"],
        code_s3_uri=EVENT["CodeS3Uri"], algorithm="lightgbm", hyperparameters=EVENT["HyperParameters"],
        hyperparameters_uri="s3://artifacts/runs/exec-1/evaluation/manifest.json", manifest=MANIFEST,
        summary=PASSING_SUMMARY, gate_result={"Passed": True}, training_job_name=EVENT["TrainingJobName"],
    )
    args.update(overrides)
    return registry_metadata(**args)


def test_good_candidate_without_champion_passes(passing_report, config):
    # GIVEN clean data, AUC above the minimum and fair decisions, no champion
    result = decide(PASSING_SUMMARY, passing_report, config, None)
    # THEN it passes with one check per rule
    assert result["Passed"] is True and result["Reasons"] == []
    assert [c["Name"] for c in result["Checks"]] == [
        "Data checks", "Test AUC", "Disparate impact Age", "Disparate impact Marital"]


def test_low_auc_fails_with_the_numbers(passing_report, config):
    summary = {**PASSING_SUMMARY, "auc": 0.78}
    result = decide(summary, passing_report, config, None)
    assert result["Passed"] is False
    assert result["Reasons"] == ["test AUC 0.7800 < min_auc 0.8000"]


def test_every_failing_reason_is_listed(credit_data, passing_report, config):
    # GIVEN failed data checks, a low AUC and an unfair Age decision
    bad_report = validate_data({"credit_data.csv": credit_data.drop(columns=["Job"])}, config)
    summary = {**PASSING_SUMMARY, "auc": 0.70, fairness_key("disparate_impact", "Age"): 0.71}
    # WHEN decided
    result = decide(summary, bad_report, config, None)
    # THEN the three failures are all reported, and the passing Marital check is not among them
    assert result["Passed"] is False and len(result["Reasons"]) == 3
    assert "data checks failed: ['required_columns']" in result["Reasons"][0]
    assert "disparate impact of Age is 0.710, outside [0.8, 1.25]" in result["Reasons"][2]
    assert [c["Passed"] for c in result["Checks"]] == [False, False, False, True]


def test_disparate_impact_above_the_upper_bound_fails(passing_report, config):
    summary = {**PASSING_SUMMARY, "disparate_impact[Marital]": 1.3}
    assert decide(summary, passing_report, config, None)["Reasons"] == [
        "disparate impact of Marital is 1.300, outside [0.8, 1.25]"]


def test_undefined_disparate_impact_fails(passing_report, config):
    summary = {**PASSING_SUMMARY, "disparate_impact[Age]": None}
    result = decide(summary, passing_report, config, None)
    assert result["Passed"] is False and "disparate impact of Age is undefined" in result["Reasons"][0]


@pytest.mark.parametrize(("champion_auc", "passed"), [(0.855, True), (0.86, True), (0.8601, False), (0.90, False)])
def test_candidate_may_trail_the_champion_by_the_margin_only(passing_report, config, champion_auc, passed):
    # GIVEN a candidate with AUC 0.85 and a champion, margin 0.01
    champion = {"ModelPackageArn": "arn:aws:sagemaker:us-east-1:1:model-package/credit/3", "TestAuc": str(champion_auc)}
    # WHEN decided THEN it passes only if 0.85 >= champion - 0.01
    result = decide(PASSING_SUMMARY, passing_report, config, champion)
    assert result["Passed"] is passed
    (check,) = [c for c in result["Checks"] if c["Name"] == "Champion comparison"]
    assert check["Passed"] is passed and "model-package/credit/3" in check["Detail"]


def test_champion_without_recorded_auc_is_not_compared(passing_report, config):
    champion = {"ModelPackageArn": "arn:aws:sagemaker:us-east-1:1:model-package/credit/1", "TestAuc": None}
    result = decide(PASSING_SUMMARY, passing_report, config, champion)
    assert result["Passed"] is True and "comparison skipped" in result["Checks"][-1]["Detail"]


def test_summary_without_auc_fails_and_says_what_to_do(passing_report, config):
    summary = {k: v for k, v in PASSING_SUMMARY.items() if k != "auc"}
    result = decide(summary, passing_report, config, None)
    assert result["Reasons"] == ["summary.json has no numeric auc; re-run the evaluation step"]


def test_registry_metadata_carries_the_lineage():
    meta = metadata()
    assert meta["ExecutionArn"] == EVENT["ExecutionArn"] and meta["DataS3Uri"] == "s3://data/credit/"
    assert meta["TestAuc"] == "0.850000" and meta["QualityGate"] == "Passed"
    assert meta["Algorithm"] == "lightgbm" and meta["CodeVersion"] == "0.1.0" and meta["DatasetName"] == "credit_data"
    assert meta["HyperParameters"] == "algorithm=lightgbm num_round=300"
    assert meta["DataSha256:train"] == "1" * 64 and meta["DataSha256:test"] == "3" * 64
    assert meta["InputSha256:credit_data.csv"] == "a" * 64 and meta["InputFileCount"] == "1"
    assert meta["CodeSha256"] == "c" * 64 and meta["ConfigSha256"] == "d" * 64


def test_long_hyperparameters_are_replaced_by_the_manifest_uri():
    # GIVEN hyperparameters whose name=value form exceeds 256 characters
    many = {f"param_{i:02d}": "0.123456789" for i in range(20)}
    # WHEN the metadata is built THEN it points at the manifest instead
    meta = metadata(hyperparameters=many)
    assert "HyperParameters" not in meta
    assert meta["HyperParametersUri"] == "s3://artifacts/runs/exec-1/evaluation/manifest.json"


def test_many_input_files_stay_within_fifty_entries():
    # GIVEN 80 input files
    manifest = copy.deepcopy(MANIFEST)
    manifest["inputs"] = [{"path": f"part-{i:03d}.csv", "sha256": f"{i:064x}"} for i in range(80)]
    # WHEN the metadata is built
    meta = metadata(manifest=manifest)
    # THEN it holds at most 50 entries, all within the key/value limits, and the combined hash covers all files
    assert len(meta) == MAX_ENTRIES
    assert meta["InputFileCount"] == "80" and len(meta["InputSha256"]) == 64
    assert all(len(k) <= MAX_KEY_LENGTH and 0 < len(v) <= MAX_VALUE_LENGTH for k, v in meta.items())


def test_input_file_names_are_made_safe_for_keys():
    manifest = copy.deepcopy(MANIFEST)
    manifest["inputs"] = [{"path": "raw/2025 (final)!.csv", "sha256": SHA}]
    assert metadata(manifest=manifest)["InputSha256:raw/2025 _final__.csv"] == SHA


def test_value_breaking_the_registry_limits_is_refused():
    with pytest.raises(ValueError, match=r"CustomerMetadataProperties\[DataS3Uri\] .* must be 1–256 characters"):
        metadata(data_s3_uri="s3://data/" + "x" * 300)
    with pytest.raises(ValueError, match=r"CustomerMetadataProperties\[DataS3Uri\]"):
        metadata(data_s3_uri="s3://data/a,b")


def test_failed_gate_is_recorded_in_the_metadata():
    assert metadata(gate_result={"Passed": False})["QualityGate"] == "Failed"


def test_gate_event_parses_and_names_the_documents_to_read():
    event = QualityGateEvent.from_event(EVENT)
    assert event.input_uris() == {
        "validation_report": "s3://artifacts/runs/exec-1/preprocess/report/validation_report.json",
        "manifest": "s3://artifacts/runs/exec-1/preprocess/report/manifest.json",
        "dataset_config": "s3://artifacts/runs/exec-1/preprocess/config/dataset_config.json",
        "summary": "s3://artifacts/runs/exec-1/evaluation/summary.json",
    }
    # AND the run's gate record and report go under the run prefix
    assert event.gate_record_uri == "s3://artifacts/runs/exec-1/gate/gate.json"
    assert event.report_uri == "s3://artifacts/runs/exec-1/report/report.html"


def test_gate_event_without_a_field_names_it():
    event = {k: v for k, v in EVENT.items() if k != "ModelDataUrl"}
    with pytest.raises(GateEventError, match="ModelDataUrl is required"):
        QualityGateEvent.from_event(event)
    with pytest.raises(GateEventError, match="HyperParameters must be an object of strings"):
        QualityGateEvent.from_event({**EVENT, "HyperParameters": {"num_round": 300}})
