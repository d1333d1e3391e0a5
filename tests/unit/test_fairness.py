from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from sagestep.training.config import PrivilegedGroup, ProtectedAttribute, load_dataset_config
from sagestep.training.fairness import fairness_report, privileged_mask


@pytest.fixture(scope="module")
def config(repo_root):
    return load_dataset_config(repo_root / "ml" / "config" / "credit_data.yaml")


@pytest.fixture(scope="module")
def scored(credit_data):
    """Real applicants, labels (1 = bad) and a simple real score: risk falls with years in the job."""
    data = credit_data.reset_index(drop=True)
    y = (data["Status"] == "bad").to_numpy(int)
    score = 1.0 / (1.0 + data["Seniority"].to_numpy(float))
    return data, y, score


def by_name(report: dict, name: str) -> dict:
    (found,) = [a for a in report["attributes"] if a["name"] == name]
    return found


def test_age_groups_come_from_the_min_selector(credit_data, config):
    # GIVEN Age with privileged {min: 25}
    mask = privileged_mask(credit_data["Age"], config.protected_attributes[0])
    # THEN exactly the applicants aged 25+ are privileged
    assert mask.sum() == (credit_data["Age"] >= 25).sum()
    assert not mask.isna().any()


def test_measures_match_a_hand_computation_on_real_rows(scored, config):
    # GIVEN real rows scored, with the decision threshold 0.35 (approve below)
    data, y, score = scored
    # WHEN the report is built
    age = by_name(fairness_report(data, y, score, config), "Age")
    # THEN DI, SPD and EOD equal the hand-computed approval rates
    approved = score < 0.35
    priv = data["Age"].to_numpy() >= 25
    fav_p, fav_u = approved[priv].mean(), approved[~priv].mean()
    good = y == 0
    tpr_p, tpr_u = approved[priv & good].mean(), approved[~priv & good].mean()
    assert age["n_privileged"] == priv.sum() and age["n_unprivileged"] == (~priv).sum()
    assert age["disparate_impact"] == pytest.approx(fav_u / fav_p)
    assert age["statistical_parity_difference"] == pytest.approx(fav_u - fav_p)
    assert age["equal_opportunity_difference"] == pytest.approx(tpr_u - tpr_p)
    assert age["within_bounds"] == (0.8 <= fav_u / fav_p <= 1.25)


def test_rows_with_missing_attribute_are_excluded_and_counted(scored, config):
    # GIVEN the real data, which has one row without Marital, plus two more blanked
    data, y, score = scored
    data = data.copy()
    data.loc[[0, 1], "Marital"] = None
    # WHEN the report is built
    marital = by_name(fairness_report(data, y, score, config), "Marital")
    # THEN those rows are in neither group and are counted
    assert marital["n_missing_excluded"] == data["Marital"].isna().sum() == 3
    assert marital["n_privileged"] + marital["n_unprivileged"] == len(data) - 3
    assert marital["n_privileged"] == (data["Marital"] == "married").sum()


def test_values_selector_matches_numbers_written_as_text(german_credit):
    # GIVEN a selector written with YAML numbers and data read from CSV as ints
    attribute = ProtectedAttribute("people_under_maintenance", PrivilegedGroup(values=("1",)))
    # WHEN grouped THEN the ints match
    mask = privileged_mask(german_credit["people_under_maintenance"], attribute)
    assert mask.sum() == (german_credit["people_under_maintenance"] == 1).sum() == 845


def test_empty_group_gives_undefined_ratio_outside_bounds(scored, config):
    # GIVEN an age threshold no applicant reaches
    data, y, score = scored
    nobody = dataclasses.replace(config, protected_attributes=(
        ProtectedAttribute("Age", PrivilegedGroup(min=200)),))
    # WHEN the report is built THEN the ratio is undefined and fails the bounds
    age = fairness_report(data, y, score, nobody)["attributes"][0]
    assert age["n_privileged"] == 0 and age["disparate_impact"] is None and age["within_bounds"] is False


def test_missing_protected_column_is_named(scored, config):
    data, y, score = scored
    with pytest.raises(ValueError, match=r"protected attribute 'Marital' .* is not a column"):
        fairness_report(data.drop(columns=["Marital"]), y, score, config)


def test_report_states_threshold_and_bounds(scored, config):
    data, y, score = scored
    report = fairness_report(data, y, score, config, threshold=0.5)
    assert report["decision_threshold"] == 0.5 and report["disparate_impact_bounds"] == [0.8, 1.25]
    assert report["approval_rate"] == pytest.approx(float(np.mean(score < 0.5)))
    assert isinstance(pd.Series(report["attributes"]).iloc[0]["privileged_group"], str)
