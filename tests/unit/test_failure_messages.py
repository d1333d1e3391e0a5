"""Failure causes name the user's input (the S3 URI, not the job's copy), lead with the error and stay short."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from sagestep.aws.jobfiles import JobFiles
from sagestep.cli.local import print_run_summary, short_cause
from sagestep.training.preprocess import read_table
from tests.unit.test_ml_entry_points import REPO_ROOT, load_script

CONFIG_URI = "s3://sagestep-dev-data-123456789012/configs/loans.yaml"
DATA_URI = "s3://sagestep-dev-data-123456789012/datasets/loans/"


def processing_job(tmp_path: Path, config_text: str, data: pd.DataFrame) -> Path:
    """A Processing job's /opt/ml as SageMaker lays it out: inputs copied in, the request in processingjobconfig.json."""
    opt_ml = tmp_path / "opt" / "ml"
    (opt_ml / "processing" / "input" / "config").mkdir(parents=True)
    (opt_ml / "processing" / "input" / "data").mkdir(parents=True)
    (opt_ml / "processing" / "input" / "config" / "loans.yaml").write_text(config_text)
    data.to_csv(opt_ml / "processing" / "input" / "data" / "loans.csv", index=False)
    request = {"ProcessingInputs": [
        {"InputName": "data", "S3Input": {"S3Uri": DATA_URI, "LocalPath": "/opt/ml/processing/input/data", "S3DataType": "S3Prefix"}},
        {"InputName": "config", "S3Input": {"S3Uri": CONFIG_URI, "LocalPath": "/opt/ml/processing/input/config", "S3DataType": "S3Prefix"}},
    ]}
    (opt_ml / "config").mkdir()
    (opt_ml / "config" / "processingjobconfig.json").write_text(json.dumps(request))
    return opt_ml


def test_job_files_map_local_inputs_back_to_the_s3_uris_given(tmp_path):
    opt_ml = processing_job(tmp_path, "x: 1\n", pd.DataFrame({"a": [1]}))
    files = JobFiles.of(opt_ml / "processing" / "input" / "config")
    assert files.name(opt_ml / "processing" / "input" / "config" / "loans.yaml") == CONFIG_URI
    assert files.name(opt_ml / "processing" / "input" / "data" / "loans.csv") == DATA_URI + "loans.csv"
    assert JobFiles.of(tmp_path).name(tmp_path / "x.csv") == str(tmp_path / "x.csv")  # outside a job: the path


def test_a_config_error_names_the_users_s3_uri_in_a_one_line_exit_message(tmp_path, credit_data):
    # GIVEN a config whose date format has a two-digit year and no pivot, staged as SageMaker stages inputs
    config = (REPO_ROOT / "ml" / "config" / "credit_data_messy.yaml").read_text().replace("      pivot_year: 1950", "")
    opt_ml = processing_job(tmp_path, config, credit_data)
    # WHEN preprocess runs
    code = load_script("preprocess").main(["--data-dir", str(opt_ml / "processing/input/data"), "--config-dir",
                                           str(opt_ml / "processing/input/config"), "--output-dir",
                                           str(opt_ml / "processing/output")])
    # THEN it fails with one line in ExitMessage that leads with the user's file and the field
    message = (opt_ml / "output" / "message").read_text()
    assert code == 1 and len(message.splitlines()) == 1
    assert message.startswith(f"{CONFIG_URI}: cleaning.dates.ApprovalDate reads two-digit years")
    assert "/opt/ml" not in message and str(tmp_path) not in message


def test_a_failed_data_check_leads_with_the_check_naming_the_data_uri(tmp_path, credit_data):
    opt_ml = processing_job(tmp_path, (REPO_ROOT / "ml" / "config" / "credit_data.yaml").read_text(),
                            credit_data.drop(columns=["Income"]))
    load_script("preprocess").main(["--data-dir", str(opt_ml / "processing/input/data"), "--config-dir",
                                    str(opt_ml / "processing/input/config"), "--output-dir", str(opt_ml / "processing/output")])
    message = (opt_ml / "output" / "message").read_text()
    assert message.startswith(f"data check required_columns failed: {DATA_URI}loans.csv columns ['Income']")
    assert "fix: add the columns" in message


def test_a_column_of_mixed_types_reads_without_a_dtype_warning(tmp_path):
    # GIVEN a large CSV whose column turns from numbers to text far down (pandas' chunked reader warns on this)
    n = 600_000
    values = np.arange(n).astype(object)
    values[n // 2:] = "x"
    pd.DataFrame({"a": values, "b": np.arange(n), "c": np.arange(n) * 1.5}).to_csv(tmp_path / "big.csv", index=False)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        pd.read_csv(tmp_path / "big.csv")
    assert any(issubclass(w.category, pd.errors.DtypeWarning) for w in seen)  # pandas' default reader warns
    # WHEN sagestep reads it THEN no DtypeWarning precedes (and pushes out) a real error
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.DtypeWarning)
        assert len(read_table(tmp_path / "big.csv")) == n


def test_a_failed_jobs_cause_shows_its_own_message_not_the_request():
    # GIVEN the cause Step Functions gives a failed .sync job: the whole DescribeProcessingJob response
    job = {"ProcessingJobName": "run-1-prep-0", "ProcessingJobStatus": "Failed",
           "ExitMessage": "s3://b/configs/x.yaml: name must be letters\nmore detail",
           "FailureReason": "AlgorithmError: exit code 1\n--- stderr tail ---\nDtypeWarning: Columns (3) have mixed types",
           "ProcessingInputs": [{"InputName": "code", "S3Input": {"S3Uri": "s3://b/code/" + "x" * 2000}}]}
    line = short_cause(json.dumps(job))
    # THEN the line names the job and leads with its own error, short, and says where the full request is
    assert line.startswith("run-1-prep-0 Failed: s3://b/configs/x.yaml: name must be letters")
    assert "ProcessingInputs" not in line and "DtypeWarning" not in line and len(line) < 450
    assert "sagestep local history" in line


def test_plain_causes_keep_their_first_line():
    assert short_cause("QualityGateRefused\nsecond line") == "QualityGateRefused"


class FakeRuntime:
    def __init__(self, documents: dict) -> None:
        self.documents = documents

    def read_json(self, uri: str) -> dict:
        return self.documents[uri]

    def save(self) -> None:
        pass

    def local_path(self, uri: str) -> Path:
        return Path("/ws") / uri.removeprefix("s3://")


def test_a_finished_run_prints_the_verdict_the_metrics_and_the_report():
    prefix = "s3://art/runs/r1/"
    summary = {"gate": {"passed": False, "reasons": ["test AUC 0.7100 < min_auc 0.8000"]},
               "metrics": {"auc": 0.71, "ks": 0.4, "gini": 0.42}, "rows": {"test": 297, "read": 1500, "unlabeled_dropped": 17},
               "model_line": "credit-data-messy", "dataset": "credit_data_messy", "algorithm": "lightgbm",
               "report": prefix + "report/report.html"}
    record = SimpleNamespace(output=None, history=[{"stateExitedEventDetails": {"output": json.dumps({"Run": {"OutputS3Uri": prefix}})}}])
    out = io.StringIO()
    assert print_run_summary(FakeRuntime({prefix + "report/summary.json": summary}), record, out)
    text = out.getvalue()
    assert text.startswith("quality gate REFUSED: test AUC 0.7100 < min_auc 0.8000\n")
    assert "AUC 0.7100  KS 0.4000  Gini 0.4200" in text and "17 without a label dropped" in text
    assert f"report: {prefix}report/report.html" in text and "/ws/art/runs/r1/report/report.html" in text


def test_a_run_that_stopped_before_its_report_prints_no_summary():
    record = SimpleNamespace(output=None, history=[])
    assert print_run_summary(FakeRuntime({}), record, io.StringIO()) is False
