"""The dataset config's cleaning: one transform, on real rows written as a loan extract (data/credit_data_messy/)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from sagestep.training import cleaning
from sagestep.training.cleaning import BAD, clean_frame, fit_category_caps, parse_date, parse_number
from sagestep.training.config import (
    OTHER_CATEGORY,
    ConfigError,
    DateColumn,
    NumberFormat,
    dataset_config_from_dict,
    load_dataset_config,
)
from sagestep.training.preprocess import check_and_clean, prepare_data, split_data, validate_data

US = NumberFormat(("Income",), ",", ".")
EUROPEAN = NumberFormat(("Income",), ".", ",")
DD_MON_YY = DateColumn("ApprovalDate", "%d-%b-%y", 1950, ("year", "month"))


@pytest.fixture(scope="module")
def messy(repo_root: Path) -> pd.DataFrame:
    return pd.read_csv(repo_root / "data" / "credit_data_messy" / "credit_data_messy.csv", low_memory=False)


@pytest.fixture(scope="module")
def messy_config(repo_root: Path):
    return load_dataset_config(repo_root / "ml" / "config" / "credit_data_messy.yaml")


@pytest.fixture
def messy_dict(repo_root: Path) -> dict:
    return yaml.safe_load((repo_root / "ml" / "config" / "credit_data_messy.yaml").read_text())


# -- numbers -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("$60,000.00 ", 60000.0), (" $1,234.5", 1234.5), ("(1,234.00)", -1234.0), ("-$5.50", -5.5), ("€ 2,000", 2000.0),
    ("12", 12.0), (".5", 0.5), (7, 7.0), (2.5, 2.5),
])
def test_money_text_reads_as_the_number_it_shows(text, expected):
    assert parse_number(text, US) == expected


@pytest.mark.parametrize("text", ["", "  ", "NA", "null", None, float("nan")])
def test_blank_money_is_missing_not_zero(text):
    assert math.isnan(parse_number(text, US))


@pytest.mark.parametrize("text", ["60k", "1,2,3", "$", "12.3.4", "abc", "1e999"])
def test_text_that_is_not_a_number_is_bad_never_guessed(text):
    assert parse_number(text, US) is BAD


def test_european_separators_follow_the_config():
    assert parse_number("1.234,56 €", EUROPEAN) == 1234.56
    assert parse_number("1.234", EUROPEAN) == 1234.0  # the thousands separator, not a decimal point


def test_table_cleaning_is_the_scalar_definition_applied_to_each_value(messy):
    # GIVEN the real money text of the fixture
    values = messy["Amount"]
    # WHEN cleaned as a column
    cleaned, problem = cleaning.clean_numbers(values, NumberFormat(("Amount",), ",", "."))
    # THEN every value equals the scalar function's result (one definition, two speeds)
    expected = [parse_number(v, NumberFormat(("Amount",), ",", ".")) for v in values]
    assert problem is None
    np.testing.assert_array_equal(cleaned.to_numpy(), np.array(expected, dtype=float))


# -- dates ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, year", [("15-Mar-68", 1968), ("28-Feb-97", 1997), ("02-Jan-05", 2005), ("31-Dec-49", 2049)])
def test_two_digit_years_fall_in_the_pivot_window_never_2062_to_2075(text, year):
    assert parse_date(text, DD_MON_YY).year == year


def test_the_cleaned_iso_form_reads_as_itself():
    assert parse_date("1968-03-15", DD_MON_YY) == parse_date("15-Mar-68", DD_MON_YY)


def test_a_date_in_another_format_is_bad():
    assert parse_date("03/15/1968", DD_MON_YY) is BAD


def test_two_digit_year_format_without_pivot_is_refused_naming_the_column(messy_dict):
    del messy_dict["cleaning"]["dates"]["ApprovalDate"]["pivot_year"]
    with pytest.raises(ConfigError, match=r"c.yaml: cleaning.dates.ApprovalDate reads two-digit years \('%d-%b-%y' has "
                                          r"%y\) without pivot_year; add pivot_year"):
        dataset_config_from_dict(messy_dict, source="c.yaml")


def test_event_time_with_two_digit_years_and_no_date_format_is_refused_naming_column_and_example(messy, messy_dict):
    # GIVEN the extract's dd-Mon-yy dates as event time, with no cleaning.dates entry to read them
    del messy_dict["cleaning"]["dates"]
    messy_dict["features"]["numeric"] = [f for f in messy_dict["features"]["numeric"] if not f.startswith("ApprovalDate")]
    config = dataset_config_from_dict(messy_dict, source="c.yaml")
    # WHEN the data is checked
    check = next(c for c in validate_data({"loans.csv": messy}, config)["checks"] if c["name"] == "event_time_values")
    # THEN it is refused, naming the column and an example, never read as 2062-2075
    assert check["passed"] is False and check["columns"] == ["ApprovalDate"]
    assert "not ISO 8601 dates" in check["detail"] and "-" in check["detail"]
    assert "two-digit years such as" in check["fix"] and "cleaning.dates.ApprovalDate" in check["fix"]


def test_derived_date_features_are_numbers_in_the_prepared_data(messy, messy_config):
    report, data = check_and_clean({"loans.csv": messy}, messy_config)
    assert report["passed"] is True
    assert data["ApprovalDate_year"].between(1968, 2012).all() and data["ApprovalDate_month"].between(1, 12).all()
    assert report["cleaning"]["date_ranges"]["ApprovalDate"][0].startswith("1968")


def test_a_derived_feature_not_derived_is_refused(messy_dict):
    messy_dict["features"]["numeric"].append("ApprovalDate_day")
    with pytest.raises(ConfigError, match=r"features lists 'ApprovalDate_day', but cleaning.dates.ApprovalDate.derive does "
                                          r"not derive it"):
        dataset_config_from_dict(messy_dict, source="c.yaml")


# -- labels, unlabeled rows, dropped columns ---------------------------------------------------------------------------


def test_labels_map_to_classes_and_rows_without_one_are_dropped_and_counted(messy, messy_config):
    unlabeled = int(messy["Status"].isna().sum())
    report, data = check_and_clean({"loans.csv": messy}, messy_config)
    # THEN CHGOFF is the positive class (bad), the unlabeled rows are gone and counted in the checks
    assert unlabeled > 0 and len(data) == len(messy) - unlabeled
    assert set(data["Status"]) == {"bad", "good"}
    assert (prepare_data(data, messy_config)["Status"] == 1).sum() == (messy["Status"] == "CHGOFF").sum()
    check = next(c for c in report["checks"] if c["name"] == "unlabeled_rows")
    assert check["passed"] and f"{unlabeled} of {len(messy)} row(s) have no Status and were dropped" in check["detail"]
    assert report["cleaning"]["dropped_unlabeled_rows"] == unlabeled and report["n_rows_used"] == len(data)


def test_unmapped_label_is_named_with_the_mapping(messy, messy_config):
    data = messy.copy()
    data.loc[:2, "Status"] = "EXEMPT"
    check = next(c for c in validate_data({"loans.csv": data}, messy_config)["checks"] if c["name"] == "target_values")
    assert check["passed"] is False and "3 row(s) have a Status that cleaning.target_values does not map" in check["detail"]
    assert "EXEMPT" in check["detail"]


def test_unlabeled_rows_are_refused_unless_the_config_drops_them(messy, messy_dict):
    messy_dict["cleaning"].pop("unlabeled_rows")
    config = dataset_config_from_dict(messy_dict, source="c.yaml")
    check = next(c for c in validate_data({"loans.csv": messy}, config)["checks"] if c["name"] == "target_values")
    assert check["passed"] is False and "cleaning.unlabeled_rows: drop" in check["fix"]


def test_dropped_columns_are_gone_and_cannot_be_features(messy, messy_config, messy_dict):
    _, data = check_and_clean({"loans.csv": messy}, messy_config)
    assert "ChgOffPrinGr" not in data.columns
    messy_dict["features"]["numeric"].append("ChgOffPrinGr")
    with pytest.raises(ConfigError, match=r"drops 'ChgOffPrinGr', which the config uses as a feature"):
        dataset_config_from_dict(messy_dict, source="c.yaml")


# -- category caps ---------------------------------------------------------------------------------------------------


def test_category_caps_are_fitted_on_training_rows_and_recorded_in_the_resolved_config(messy, messy_config):
    # GIVEN the cleaned, split fixture
    _, data = check_and_clean({"loans.csv": messy}, messy_config)
    splits = split_data(prepare_data(data, messy_config), messy_config)
    # WHEN the cap is fitted on the training split
    fitted = fit_category_caps(splits.train, messy_config)
    cap = fitted.cleaning.cap("BankBranch")
    # THEN the 30 most frequent training branches are kept, recorded in the config, the rest become (other)
    counts = splits.train["BankBranch"].value_counts()
    assert len(cap.keep) == 30 and counts[list(cap.keep)].min() >= counts.drop(list(cap.keep)).max()
    again = dataset_config_from_dict(fitted.to_dict(), source="dataset_config.json")
    assert again.cleaning.cap("BankBranch").keep == cap.keep
    capped = cleaning.apply_caps(splits.test, fitted)
    assert set(capped["BankBranch"].dropna()) <= set(cap.keep) | {OTHER_CATEGORY}


def test_unfitted_caps_are_not_applied_silently(messy, messy_config):
    with pytest.raises(cleaning.CleaningError, match="not fitted"):
        clean_frame(messy, messy_config, caps=True)


# -- the config ------------------------------------------------------------------------------------------------------


def test_unknown_cleaning_key_lists_the_known_ones(messy_dict):
    messy_dict["cleaning"]["currency"] = "$"
    with pytest.raises(ConfigError) as err:
        dataset_config_from_dict(messy_dict, source="c.yaml")
    assert str(err.value) == ("c.yaml: cleaning.currency is not a known key; the known keys of cleaning are: drop_columns, "
                              "numbers, dates, target_values, unlabeled_rows, max_categories (README: Dataset config)")


def test_a_version_1_config_is_told_what_to_add(messy_dict):
    del messy_dict["config_version"]
    with pytest.raises(ConfigError, match=r"config_version is required; this is a version 1 config: add `config_version: 2`"):
        dataset_config_from_dict(messy_dict, source="c.yaml")


def test_the_cleaning_section_round_trips_through_the_resolved_config(messy_config):
    again = dataset_config_from_dict(messy_config.to_dict(), source="x.json")
    assert dataclasses.replace(again, source=messy_config.source) == messy_config


def test_model_line_names_come_from_the_config_name(messy_config, messy_dict):
    assert messy_config.model_line == "credit-data-messy"
    messy_dict["name"] = "a" * 40
    with pytest.raises(ConfigError, match=r"name must be letters, digits, _ and -.*it names the model line"):
        dataset_config_from_dict(messy_dict, source="c.yaml")
