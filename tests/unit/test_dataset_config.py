from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import yaml

from sagestep.training.config import (
    ConfigError,
    category_key,
    dataset_config_from_dict,
    find_config_file,
    load_dataset_config,
    load_dataset_config_dir,
)


@pytest.fixture
def credit_yaml(repo_root: Path) -> Path:
    return repo_root / "ml" / "config" / "credit_data.yaml"


@pytest.fixture
def credit_dict(credit_yaml: Path) -> dict:
    return yaml.safe_load(credit_yaml.read_text())


def write_yaml(tmp_path: Path, data: dict, name: str = "x.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_credit_data_config_loads_into_typed_fields(credit_yaml, credit_data):
    # GIVEN the bundled credit_data config
    # WHEN it is loaded
    config = load_dataset_config(credit_yaml)
    # THEN the fields the pipeline relies on are typed and match the data's columns
    assert config.target == "Status" and config.positive_label == "bad"
    assert config.id_column == "application_id" and config.event_time_column is None
    assert set(config.features.all) <= set(credit_data.columns)
    age, marital = config.protected_attributes
    assert (age.name, age.privileged.min, age.privileged.max) == ("Age", 25.0, None)
    assert marital.privileged.values == ("married",)
    assert config.thresholds.disparate_impact == (0.8, 1.25)
    assert config.source == str(credit_yaml)


def test_german_credit_config_scores_bad_and_leaves_out_leaking_columns(repo_root, german_credit):
    # GIVEN the German credit config WHEN it is loaded
    config = load_dataset_config(repo_root / "ml" / "config" / "german_credit.yaml")
    # THEN the positive label is the 30% class and the target-leaking columns are not features
    assert category_key(config.positive_label) == "1"
    assert (german_credit[config.target] == config.positive_label).mean() == pytest.approx(0.30)
    assert "saving_ratio" not in config.features.all
    assert "installment.rate.in.percentage.of.disposable.income" not in config.features.all
    assert set(config.required_columns) <= set(german_credit.columns)


def test_resolved_config_round_trips_through_json(tmp_path, credit_yaml):
    # GIVEN a loaded config written as JSON with to_dict()
    config = load_dataset_config(credit_yaml)
    path = tmp_path / "dataset_config.json"
    path.write_text(json.dumps(config.to_dict()))
    # WHEN the JSON is loaded again
    again = load_dataset_config(path)
    # THEN it is the same config (apart from where it was read) with the same hash
    assert dataclasses.replace(again, source=config.source) == config
    assert again.sha256() == config.sha256()


def test_non_numeric_min_auc_names_file_field_and_value(tmp_path, credit_dict):
    # GIVEN min_auc set to a word
    credit_dict["thresholds"]["min_auc"] = "high"
    path = write_yaml(tmp_path, credit_dict)
    # WHEN loading THEN the error names the file, the field, the rule and the bad value
    with pytest.raises(ConfigError) as err:
        load_dataset_config(path)
    assert str(err.value) == f"{path}: thresholds.min_auc must be a number in [0, 1], got 'high'"


def test_missing_required_key_is_an_error_not_a_default(tmp_path, credit_dict):
    # GIVEN a config without split.seed
    del credit_dict["split"]["seed"]
    path = write_yaml(tmp_path, credit_dict)
    # WHEN loading THEN the missing key is named with the fix
    with pytest.raises(ConfigError, match=r"x\.yaml: split\.seed is required; add it to the config"):
        load_dataset_config(path)


def test_unknown_top_level_key_is_refused_with_the_list_of_known_keys(tmp_path, credit_dict):
    # GIVEN "thresholds" misspelt
    credit_dict["tresholds"] = credit_dict.pop("thresholds")
    path = write_yaml(tmp_path, credit_dict)
    # WHEN loading THEN the error lists every known key (no guess that could mislead)
    with pytest.raises(ConfigError) as err:
        load_dataset_config(path)
    message = str(err.value)
    assert "tresholds is not a known key; the known keys are: config_version, name," in message
    assert "thresholds, cleaning" in message and "did you mean" not in message


def test_column_listed_as_numeric_and_categorical_is_rejected(credit_dict):
    # GIVEN Home listed in both feature lists
    credit_dict["features"]["numeric"].append("Home")
    # WHEN validating THEN the error names the column and the fix
    with pytest.raises(ConfigError, match=r"features lists \['Home'\] as both numeric and categorical"):
        dataset_config_from_dict(credit_dict, source="c.yaml")


def test_target_listed_as_feature_is_rejected(credit_dict):
    # GIVEN the target among the features (a leak)
    credit_dict["features"]["categorical"].append("Status")
    # WHEN validating THEN it is refused
    with pytest.raises(ConfigError, match=r"must not include the target column 'Status'"):
        dataset_config_from_dict(credit_dict, source="c.yaml")


def test_privileged_group_mixing_values_and_range_is_rejected(credit_dict):
    # GIVEN a privileged selector with both values and min
    credit_dict["protected_attributes"][1]["privileged"] = {"values": ["married"], "min": 3}
    # WHEN validating THEN the field path points at the selector
    with pytest.raises(ConfigError, match=r"protected_attributes\[1\]\.privileged mixes values with min/max"):
        dataset_config_from_dict(credit_dict, source="c.yaml")


def test_disparate_impact_bounds_must_bracket_one(credit_dict):
    # GIVEN bounds that do not contain 1
    credit_dict["thresholds"]["disparate_impact"] = [1.1, 1.25]
    # WHEN validating THEN the lower bound is refused
    with pytest.raises(ConfigError, match=r"thresholds\.disparate_impact\[0\] must be a number in \[0, 1\]"):
        dataset_config_from_dict(credit_dict, source="c.yaml")


def test_split_fractions_leaving_no_training_data_are_rejected(credit_dict):
    # GIVEN validation + test fractions of 0.95
    credit_dict["split"]["validation_fraction"] = 0.5
    credit_dict["split"]["test_fraction"] = 0.45
    # WHEN validating THEN the split is refused with a suggestion
    with pytest.raises(ConfigError, match=r"split validation_fraction \+ test_fraction = 0.95"):
        dataset_config_from_dict(credit_dict, source="c.yaml")


def test_invalid_yaml_names_the_file(tmp_path):
    # GIVEN a file with broken YAML
    path = tmp_path / "broken.yaml"
    path.write_text("target: [unclosed\n")
    # WHEN loading THEN the file and the fix are named
    with pytest.raises(ConfigError, match=r"broken\.yaml: not valid YAML .*fix the syntax"):
        load_dataset_config(path)


def test_config_dir_with_two_configs_is_ambiguous(tmp_path, credit_yaml):
    # GIVEN a config channel holding two config files
    (tmp_path / "a.yaml").write_text(credit_yaml.read_text())
    (tmp_path / "b.json").write_text("{}")
    # WHEN looking for the config THEN both are listed
    with pytest.raises(ConfigError, match=r"expected exactly one dataset config file .* found \['a.yaml', 'b.json'\]"):
        find_config_file(tmp_path)


def test_config_dir_with_one_config_loads_it(tmp_path, credit_yaml):
    # GIVEN a directory with the config and an unrelated file
    (tmp_path / "credit.yml").write_text(credit_yaml.read_text())
    (tmp_path / "README.txt").write_text("not a config")
    # WHEN loading the directory THEN the one config is read
    assert load_dataset_config_dir(tmp_path).name == "credit_data"


def test_config_is_frozen(credit_yaml):
    # GIVEN a loaded config WHEN a field is assigned THEN it is refused (configs are values)
    config = load_dataset_config(credit_yaml)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.target = "Other"  # type: ignore[misc]


@pytest.mark.parametrize("value", [4, 4.0, "4", " 4 ", True])
def test_category_key_makes_csv_json_and_text_values_agree(value):
    # GIVEN the same category written as int, float, text, padded text (bool is its own category)
    # WHEN normalised THEN the integral forms agree
    expected = "True" if value is True else "4"
    assert category_key(value) == expected


@pytest.mark.parametrize("value", [None, math.nan, "", "   "])
def test_category_key_treats_blank_and_nan_as_missing(value):
    assert category_key(value) is None


def test_unquoted_yes_as_positive_label_asks_for_quotes(tmp_path, credit_dict):
    # GIVEN `positive_label: yes`, which YAML reads as the boolean true
    text = yaml.safe_dump(credit_dict).replace("positive_label: bad", "positive_label: yes")
    path = tmp_path / "x.yaml"
    path.write_text(text)
    # WHEN loading THEN the error explains the YAML boolean and how to quote it
    with pytest.raises(ConfigError, match=r'positive_label is the YAML boolean True .* positive_label: "yes"'):
        load_dataset_config(path)
