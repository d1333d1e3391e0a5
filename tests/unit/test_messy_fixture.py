"""The messy fixture (real credit_data rows written as a loan extract) trains by its config alone, and the same
config's cleaning is applied at serving (a raw request scores as the cleaned row), in batch-style scoring of raw
frames, and in monitoring (types from the config, no extra-column violations); the run's report says what the
cleaning did."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pandas as pd
import pytest

from sagestep.cli import main as cli
from sagestep.serving import inference as serving
from sagestep.training.model import ScoringModel
from sagestep.training.report import run_summary, write_run_report
from tests.unit.test_ml_entry_points import REPO_ROOT, pipeline, summary

DATA = REPO_ROOT / "data" / "credit_data_messy" / "credit_data_messy.csv"
CONFIG = REPO_ROOT / "ml" / "config" / "credit_data_messy.yaml"


@pytest.fixture(scope="module")
def messy_run(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("messy")
    pipeline(work, DATA, CONFIG, {"lightgbm": {"algorithm": "lightgbm", "learning_rate": "0.05", "num_leaves": "15"}})
    return work


@pytest.fixture(scope="module")
def model(messy_run) -> serving.ServingModel:
    return serving.load_model(messy_run / "lightgbm" / "model")


def csv_line(values: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(values)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return pd.read_csv(DATA, dtype=str, keep_default_na=False).set_index("LoanNr")


def test_the_messy_extract_trains_by_its_config_alone(messy_run):
    # GIVEN only the raw extract and its config WHEN preprocess, train and evaluate run
    pre = messy_run / "pre"
    report = json.loads((pre / "report" / "validation_report.json").read_text())
    # THEN the rows without a label were dropped and counted, and the model is useful on the newest loans
    assert report["passed"] and report["cleaning"]["dropped_unlabeled_rows"] == 17 and report["n_rows_used"] == 1483
    assert summary(messy_run, "lightgbm")["auc"] >= 0.75
    # AND the cap fitted on the training split is recorded in the resolved config and in the model
    resolved = json.loads((pre / "config" / "dataset_config.json").read_text())
    keep = resolved["cleaning"]["max_categories"]["BankBranch"]["keep"]
    meta = json.loads((messy_run / "lightgbm" / "model" / "model_meta.json").read_text())
    assert len(keep) == 30 and meta["dataset_config"]["cleaning"]["max_categories"]["BankBranch"]["keep"] == keep
    assert meta["model_line"] == "credit-data-messy"


def test_a_raw_request_scores_exactly_as_the_cleaned_row(messy_run, model, raw):
    # GIVEN held-out rows as preprocess cleaned them, and the same loans as the extract wrote them
    test = pd.read_csv(messy_run / "pre" / "test" / "test.csv")
    rows = test.head(25)
    expected = ScoringModel.load(messy_run / "lightgbm" / "model").predict_proba(rows)
    buffer = io.StringIO()
    csv.writer(buffer).writerows([[raw.loc[loan, c] for c in model.request_columns] for loan in rows["LoanNr"]])
    # WHEN the raw text ("$1,234.00 ", 15-Mar-68, unseen branches) is sent as CSV and as JSON
    by_csv = serving.predict(serving.parse_request(buffer.getvalue(), "text/csv"), model)
    instances = [{c: raw.loc[loan, c] for c in model.request_columns} for loan in rows["LoanNr"]]
    by_json = serving.predict(serving.parse_request(json.dumps({"instances": instances}), "application/json"), model)
    # THEN the scores are the cleaned rows' scores
    assert by_csv.scores == pytest.approx(list(expected), abs=1e-12)
    assert by_json.scores == pytest.approx(list(expected), abs=1e-12)
    assert "ApprovalDate" in model.request_columns and "ApprovalDate_year" not in model.request_columns


def test_bad_money_in_a_request_is_a_400_naming_the_field(model, raw):
    values = [raw.iloc[0][c] for c in model.request_columns]
    values[model.request_columns.index("Income")] = "lots"
    with pytest.raises(serving.RequestError) as err:
        serving.predict(serving.parse_request(csv_line(values), "text/csv"), model)
    assert err.value.status_code == 400 and "column 5 (Income): 'lots' is not a number" in str(err.value)


def test_an_unseen_branch_scores_as_the_other_category(model, raw):
    values = [raw.iloc[0][c] for c in model.request_columns]
    at = model.request_columns.index("BankBranch")
    unseen = serving.predict(serving.parse_request(csv_line([*values[:at], "BR9999", *values[at + 1:]]), "text/csv"), model)
    other = serving.predict(serving.parse_request(csv_line([*values[:at], "(other)", *values[at + 1:]]), "text/csv"), model)
    assert unseen.scores == other.scores


def test_raw_frames_are_cleaned_by_the_model_as_batch_scoring_does(messy_run, raw):
    model = ScoringModel.load(messy_run / "lightgbm" / "model")
    test = pd.read_csv(messy_run / "pre" / "test" / "test.csv").head(50)
    raw_rows = raw.loc[test["LoanNr"]].reset_index()
    assert list(model.predict_proba(raw_rows)) == pytest.approx(list(model.predict_proba(test)), abs=1e-12)


def test_monitoring_a_raw_extract_uses_the_config_types_and_lists_other_columns_once(tmp_path, capsys):
    # GIVEN a baseline made from the raw extract with the dataset config
    assert cli(["baseline", "--input", str(DATA), "--output", str(tmp_path / "b"), "--dataset-config", str(CONFIG)]) == 0
    statistics = json.loads((tmp_path / "b" / "statistics.json").read_text())
    types = {f["name"]: f["inferred_type"] for f in statistics["features"]}
    # THEN money columns are profiled as numbers, the derived dates are there, the id/target/leak are not
    assert types["Income"] in ("Integral", "Fractional") and types["Amount"] in ("Integral", "Fractional")
    assert "ApprovalDate_year" in types and not {"LoanNr", "Status", "ChgOffPrinGr", "ApprovalDate"} & set(types)
    capsys.readouterr()
    # WHEN another raw extract (every column of the file) is checked against it
    assert cli(["monitor", "data-quality", "--input", str(DATA), "--baseline-dir", str(tmp_path / "b"),
                "--output", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    violations = json.loads((tmp_path / "r" / "constraint_violations.json").read_text())["violations"]
    # THEN no column the model never used is a violation; they are listed once as not monitored
    assert not [v for v in violations if v["constraint_check_type"] == "extra_column_check"]
    assert out.count("not monitored") == 1 and "id column: LoanNr" in out and "target: Status" in out
    assert "dropped by cleaning.drop_columns: ChgOffPrinGr" in out


def test_the_run_report_says_what_the_cleaning_did(messy_run, tmp_path):
    # GIVEN the run's outputs laid out as in S3 and the gate's record of its decision
    run = tmp_path / "run"
    (run / "preprocess").mkdir(parents=True)
    for part in ("report", "config"):
        (run / "preprocess" / part).symlink_to(messy_run / "pre" / part)
    (run / "evaluation").symlink_to(messy_run / "lightgbm" / "evaluation")
    (run / "gate").mkdir()
    gate = {"Gate": {"Passed": True, "Reasons": [], "ModelLine": "credit-data-messy",
                     "ReportS3Uri": "s3://a/runs/x/report/report.html"},
            "ExecutionArn": "arn:aws:states:us-east-1:1:execution:training:x", "HyperParameters": {"algorithm": "lightgbm"}}
    (run / "gate" / "gate.json").write_text(json.dumps(gate))
    # WHEN the report step renders it
    html, summary_path = write_run_report(run, gate, tmp_path / "out")
    # THEN the page lists the cleaning, and summary.json has the verdict, metrics and counts
    text = html.read_text()
    assert "17 of 1,500 rows had no label and were dropped" in text and "columns dropped: ChgOffPrinGr" in text
    assert "BankBranch: " in text and "capped to the 30 most frequent" in text
    result = json.loads(summary_path.read_text())
    assert result["gate"]["passed"] is True and result["rows"]["unlabeled_dropped"] == 17
    assert result["metrics"]["auc"] == summary(messy_run, "lightgbm")["auc"] and result == run_summary(run, gate)
