from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pandas as pd
import pytest

from sagestep.training.config import load_dataset_config
from sagestep.training.preprocess import (
    DataError,
    failed_checks_summary,
    file_record,
    list_data_files,
    load_prepared,
    prepare_data,
    read_table,
    sha256_file,
    split_data,
    validate_data,
)


@pytest.fixture(scope="module")
def config(repo_root):
    return load_dataset_config(repo_root / "ml" / "config" / "credit_data.yaml")


def check(report: dict, name: str) -> dict:
    (found,) = [c for c in report["checks"] if c["name"] == name]
    return found


def test_bundled_credit_data_passes_every_check(credit_data, config):
    # GIVEN the real credit data WHEN validated
    report = validate_data({"credit_data.csv": credit_data}, config)
    # THEN every check passes and each check carries name, passed, detail, columns
    assert report["passed"] is True, failed_checks_summary(report)
    assert report["n_rows"] == 4454
    assert {c["name"] for c in report["checks"]} >= {
        "non_empty", "required_columns", "numeric_types", "all_null_columns", "target_values", "duplicate_ids"}
    assert all({"name", "passed", "detail", "columns"} <= set(c) for c in report["checks"])


def test_missing_target_column_is_reported_with_file_and_fix(credit_data, config):
    # GIVEN data without the target column
    data = credit_data.drop(columns=["Status"])
    # WHEN validated
    report = validate_data({"applications.csv": data}, config)
    # THEN the report fails and names the file, the column and the fix
    assert report["passed"] is False
    missing = check(report, "required_columns")
    assert missing["passed"] is False and missing["columns"] == ["Status"]
    assert missing["detail"] == "applications.csv has no column ['Status']"
    assert str(config.source) in missing["fix"]
    assert check(report, "target_values")["passed"] is False


def test_non_numeric_values_in_numeric_feature_are_counted_with_examples(credit_data, config):
    # GIVEN three Income values typed as text
    data = credit_data.astype({"Income": object})
    data.loc[[3, 10, 20], "Income"] = ["n/a", "n/a", "lots"]
    # WHEN validated
    report = validate_data({"part-1.csv": data}, config)
    # THEN numeric_types fails naming the file, the column, the count and examples
    numeric = check(report, "numeric_types")
    assert numeric["passed"] is False and numeric["columns"] == ["Income"] and numeric["files"] == ["part-1.csv"]
    assert "Income has 3 non-numeric value(s), e.g. ['n/a', 'lots']" in numeric["detail"]
    assert "features.categorical" in numeric["fix"]


def test_blank_strings_in_numeric_feature_count_as_missing_not_wrong_type(credit_data, config):
    # GIVEN Income with blanks (missing values written as empty text)
    data = credit_data.astype({"Income": object})
    data.loc[[1, 2], "Income"] = ["", "  "]
    # WHEN validated THEN the type check passes
    assert check(validate_data({"a.csv": data}, config), "numeric_types")["passed"] is True


def test_empty_data_fails_non_empty(credit_data, config):
    # GIVEN a file with the right header and no rows
    report = validate_data({"empty.csv": credit_data.iloc[:0]}, config)
    # THEN the data is reported empty
    empty = check(report, "non_empty")
    assert report["passed"] is False and empty["passed"] is False and empty["files"] == ["empty.csv"]


def test_all_null_feature_is_reported(credit_data, config):
    # GIVEN a feature with no value at all
    data = credit_data.assign(Debt=np.nan)
    # WHEN validated THEN the column is named
    nulls = check(validate_data({"a.csv": data}, config), "all_null_columns")
    assert nulls["passed"] is False and nulls["columns"] == ["Debt"]


def test_rows_without_target_are_reported(credit_data, config):
    # GIVEN three unlabelled rows
    data = credit_data.copy()
    data.loc[[0, 1, 2], "Status"] = None
    # WHEN validated THEN the count is in the detail and the fix says to drop them
    target = check(validate_data({"a.csv": data}, config), "target_values")
    assert target["passed"] is False
    assert "3 row(s) have no Status" in target["detail"] and "cleaning.unlabeled_rows: drop" in target["fix"]


def test_positive_label_never_seen_lists_the_values_seen(credit_data, config):
    # GIVEN a config whose positive label is capitalised differently from the data
    wrong = dataclasses.replace(config, positive_label="Bad")
    # WHEN validated THEN the fix offers the values present
    target = check(validate_data({"a.csv": credit_data}, wrong), "target_values")
    assert target["passed"] is False
    assert "positive_label 'Bad' never occurs in Status (values seen: ['bad', 'good'])" in target["detail"]
    assert "one of ['bad', 'good']" in target["fix"]


def test_third_target_value_is_rejected(credit_data, config):
    # GIVEN one row labelled with a third class
    data = credit_data.copy()
    data.loc[5, "Status"] = "unknown"
    # WHEN validated THEN the target must be binary
    target = check(validate_data({"a.csv": data}, config), "target_values")
    assert target["passed"] is False and "exactly 2 values" in target["detail"]


def test_duplicate_ids_are_reported(credit_data, config):
    # GIVEN two rows sharing the id of a third
    data = credit_data.copy()
    data.loc[[10, 11], "application_id"] = data.loc[9, "application_id"]
    # WHEN validated THEN the duplicates are counted
    dupes = check(validate_data({"a.csv": data}, config), "duplicate_ids")
    assert dupes["passed"] is False
    assert dupes["detail"].startswith("1 id value(s) repeat (3 rows)")


def test_missing_column_in_one_of_several_files_names_that_file(credit_data, config):
    # GIVEN two data files, the second without Job
    tables = {"2024.csv": credit_data.iloc[:2000], "2025.csv": credit_data.iloc[2000:].drop(columns=["Job"])}
    # WHEN validated THEN only the second file is blamed
    missing = check(validate_data(tables, config), "required_columns")
    assert missing["files"] == ["2025.csv"] and missing["detail"] == "2025.csv has no column ['Job']"


def test_failed_checks_summary_lists_file_column_problem_and_fix(credit_data, config):
    # GIVEN a report with a missing column
    report = validate_data({"applications.csv": credit_data.drop(columns=["Income"])}, config)
    # WHEN summarised for stderr
    text = failed_checks_summary(report, "s3://bucket/raw/")
    # THEN the first line leads with the error: where, which column, what and how to fix
    first = text.splitlines()[0]
    assert first.startswith("data check required_columns failed: applications.csv columns ['Income']: "
                            "applications.csv has no column ['Income']")
    assert "fix: add the columns to the data" in first and "s3://bucket/raw/" in text


def test_prepare_makes_target_zero_one_with_bad_as_one(credit_data, config):
    # GIVEN the real data WHEN prepared
    prepared = prepare_data(credit_data, config)
    # THEN the target keeps its name, 1 = "bad", and only configured columns remain
    assert prepared["Status"].dtype == np.int64
    assert prepared["Status"].sum() == (credit_data["Status"] == "bad").sum() == 1254
    assert list(prepared.columns) == list(config.prepared_columns) == list(config.required_columns)
    assert prepared["Income"].dtype == np.float64


def test_stratified_split_has_configured_sizes_and_class_balance(credit_data, config):
    # GIVEN prepared data WHEN split
    splits = split_data(prepare_data(credit_data, config), config)
    sizes = {name: len(part) for name, part in splits.items()}
    # THEN sizes follow the fractions, the parts are disjoint and each keeps the bad rate
    assert sizes == {"train": 2895, "validation": 668, "test": 891}
    ids = [set(part["application_id"]) for _, part in splits.items()]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    for _, part in splits.items():
        assert part["Status"].mean() == pytest.approx(1254 / 4454, abs=0.005)
    assert splits.method == "stratified"


def test_split_is_reproducible_from_the_seed(credit_data, config):
    # GIVEN the same data and seed twice WHEN split THEN the test ids are identical; another seed differs
    prepared = prepare_data(credit_data, config)
    first = split_data(prepared, config).test["application_id"].tolist()
    second = split_data(prepared, config).test["application_id"].tolist()
    other = split_data(prepared, dataclasses.replace(config, split=dataclasses.replace(config.split, seed=1)))
    assert first == second and first != other.test["application_id"].tolist()


def test_time_split_puts_oldest_rows_in_train_and_newest_in_test(credit_data, config):
    # GIVEN an application date per row (shuffled so input order is not time order)
    rng = np.random.default_rng(0)
    data = credit_data.assign(applied_at=pd.Timestamp("2020-01-01") + pd.to_timedelta(
        rng.permutation(len(credit_data)), unit="h"))
    timed = dataclasses.replace(config, event_time_column="applied_at")
    # WHEN split
    splits = split_data(prepare_data(data, timed), timed)
    # THEN every train time precedes every validation time, which precedes every test time
    assert splits.method == "time"
    assert splits.train["applied_at"].max() < splits.validation["applied_at"].min()
    assert splits.validation["applied_at"].max() < splits.test["applied_at"].min()
    assert len(splits.test) == 891


def test_too_few_rows_to_split_is_a_data_error(credit_data, config):
    # GIVEN five rows WHEN split THEN the error says to provide more
    with pytest.raises(DataError, match="too few to split"):
        split_data(prepare_data(credit_data.iloc[:5], config), config)


def test_sha256_and_file_record_describe_the_file(tmp_path, credit_data):
    # GIVEN a CSV written to disk
    path = tmp_path / "raw" / "credit.csv"
    path.parent.mkdir()
    credit_data.iloc[:100].to_csv(path, index=False)
    # WHEN hashed THEN it matches hashlib and the record holds path, size and rows
    assert sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    record = file_record(path, tmp_path, rows=100)
    assert record == {"path": "raw/credit.csv", "sha256": sha256_file(path), "size_bytes": path.stat().st_size,
                      "rows": 100}


def test_data_files_are_found_as_csv_and_parquet(tmp_path, credit_data):
    # GIVEN a CSV, a Parquet file and an unrelated file
    credit_data.iloc[:10].to_csv(tmp_path / "a.csv", index=False)
    credit_data.iloc[10:20].to_parquet(tmp_path / "b.parquet")
    (tmp_path / "notes.txt").write_text("x")
    # WHEN listed and read THEN both data files are read with their rows
    files = list_data_files(tmp_path)
    assert [f.name for f in files] == ["a.csv", "b.parquet"]
    assert [len(read_table(f)) for f in files] == [10, 10]


def test_empty_data_directory_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no data file"):
        list_data_files(tmp_path)


def test_prepared_file_with_text_labels_is_refused(tmp_path, credit_data, config):
    # GIVEN raw (not prepared) data where preprocess output is expected
    path = tmp_path / "train.csv"
    credit_data.to_csv(path, index=False)
    # WHEN loaded as prepared data THEN the error says the labels must be 0/1
    with pytest.raises(DataError, match="Status must hold 0/1 labels"):
        load_prepared(path, config)
