"""Data-quality checks and drift on real credit rows: injected drift, clean splits, and each check type."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from sagestep.monitoring.baseline import build_baseline
from sagestep.monitoring.data_quality import check_data_quality, run_data_quality
from sagestep.monitoring.files import write_json
from sagestep.monitoring.statistics import compute_statistics

NUMERIC = ["Seniority", "Time", "Age", "Expenses", "Income", "Assets", "Debt", "Amount", "Price"]
CATEGORICAL = ["Home", "Marital", "Records", "Job"]
FEATURES = NUMERIC + CATEGORICAL


def _split(credit_data: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    shuffled = credit_data[FEATURES].sample(frac=1.0, random_state=seed).reset_index(drop=True)
    half = len(shuffled) // 2
    return shuffled.iloc[:half].copy(), shuffled.iloc[half:].reset_index(drop=True)


def _drift_violations(violations: dict) -> set[str]:
    return {v["feature_name"] for v in violations["violations"] if v["constraint_check_type"] == "baseline_drift_check"}


@pytest.fixture(scope="module")
def split_baseline(credit_data: pd.DataFrame) -> tuple[dict, dict, pd.DataFrame]:
    reference, current = _split(credit_data, seed=11)
    statistics, constraints = build_baseline(reference, numeric=NUMERIC, categorical=CATEGORICAL)
    return statistics, constraints, current


def test_l_infinity_agrees_with_scipy_ks_at_100k_rows(credit_data: pd.DataFrame) -> None:
    # GIVEN every numeric credit column resampled to 100,000 baseline and 100,000 current rows, half of them shifted
    rng = np.random.default_rng(7)
    reference, current = _split(credit_data, seed=3)
    base = {c: rng.choice(reference[c].dropna().to_numpy(float), 100_000) for c in NUMERIC}
    cur = {c: rng.choice(current[c].dropna().to_numpy(float), 100_000) for c in NUMERIC}
    for i, c in enumerate(NUMERIC):
        if i % 2:
            cur[c] = cur[c] + 0.2 * np.std(cur[c])
    statistics = compute_statistics(pd.DataFrame(base))
    constraints = build_baseline(pd.DataFrame(base))[1]
    # WHEN the drift report is computed from the two KLL sketches
    report = run_data_quality(pd.DataFrame(cur), statistics, constraints).drift_report
    # THEN each L-infinity distance is within 0.01 of scipy's two-sample KS statistic on the raw values
    for entry in report["features"]:
        ks = scipy_stats.ks_2samp(base[entry["name"]], cur[entry["name"]]).statistic
        assert abs(entry["l_infinity"] - ks) < 0.01, entry["name"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_injected_drift_is_flagged_on_exactly_the_shifted_features(credit_data: pd.DataFrame, seed: int) -> None:
    # GIVEN a shuffled split of the real rows; on the current half Income and Price move by 0.5 sd, Amount x1.3
    reference, current = _split(credit_data, seed)
    statistics, constraints = build_baseline(reference, numeric=NUMERIC, categorical=CATEGORICAL)
    for column in ("Income", "Price"):
        current[column] = (current[column] + 0.5 * current[column].std()).round()
    current["Amount"] = (current["Amount"] * 1.3).round()
    # WHEN data quality is checked with the default (Robust, 0.1) constraints
    result = run_data_quality(current, statistics, constraints)
    # THEN the baseline drift violations name exactly the shifted features, with Model Monitor's wording
    assert _drift_violations(result.violations) == {"Income", "Price", "Amount"}
    drift = [v for v in result.violations["violations"] if v["constraint_check_type"] == "baseline_drift_check"]
    assert all(v["description"].startswith("Numerical distance: ") for v in drift)
    assert all(v["description"].endswith(" exceeds numerical threshold: 0.1") for v in drift)
    # AND the drift report flags the same features with a major PSI
    assert set(result.drift_report["flagged_features"]) == {"Income", "Price", "Amount"}
    psi = {f["name"]: f["psi"] for f in result.drift_report["features"]}
    assert min(psi["Income"], psi["Price"], psi["Amount"]) > 0.25


@pytest.mark.parametrize("seed", range(8))
def test_clean_random_split_has_no_baseline_drift_violation(credit_data: pd.DataFrame, seed: int) -> None:
    # GIVEN two halves of a random split of the same real data
    reference, current = _split(credit_data, seed)
    statistics, constraints = build_baseline(reference, numeric=NUMERIC, categorical=CATEGORICAL)
    # WHEN checked with the Robust method
    result = run_data_quality(current, statistics, constraints)
    # THEN no feature drifts, although the raw L-infinity distances are not zero
    assert _drift_violations(result.violations) == set()
    assert max(f["l_infinity"] for f in result.drift_report["features"]) > 0.0
    assert all(f["psi"] < 0.1 for f in result.drift_report["features"])


def test_simple_method_compares_the_raw_distance(split_baseline: tuple[dict, dict, pd.DataFrame]) -> None:
    # GIVEN a clean split and a Simple comparison with a tight 0.02 threshold
    statistics, constraints, current = split_baseline
    simple = copy.deepcopy(constraints)
    simple["monitoring_config"]["distribution_constraints"].update(comparison_method="Simple", comparison_threshold=0.02)
    # WHEN both methods run
    robust_report = run_data_quality(current, statistics, constraints).drift_report
    simple_report = run_data_quality(current, statistics, simple).drift_report
    # THEN Simple uses L-infinity itself (and flags sampling noise) while Robust subtracts the noise allowance
    for entry in simple_report["features"]:
        if entry["kind"] == "numerical":
            assert entry["distance"] == entry["l_infinity"]
            assert entry["flagged"] == (entry["l_infinity"] > 0.02)
    assert any(f["flagged"] for f in simple_report["features"])
    assert not any(f["flagged"] for f in robust_report["features"])


Mutation = Callable[[pd.DataFrame], pd.DataFrame]


def _drop_debt(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=["Debt"])


def _add_status(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(Status="good")


def _text_in_age(df: pd.DataFrame) -> pd.DataFrame:
    age = df["Age"].astype(object)
    age.iloc[::10] = "unknown"
    return df.assign(Age=age)


def _fractional_seniority(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(Seniority=df["Seniority"] + 0.5)


def _gaps_in_expenses(df: pd.DataFrame) -> pd.DataFrame:
    expenses = df["Expenses"].astype(float)
    expenses.iloc[::3] = np.nan
    return df.assign(Expenses=expenses)


def _new_home(df: pd.DataFrame) -> pd.DataFrame:
    home = df["Home"].copy()
    home.iloc[::20] = "boat"
    return df.assign(Home=home)


@pytest.mark.parametrize(
    ("mutate", "feature", "check", "wording"),
    [
        (_drop_debt, "Debt", "missing_column_check", "There are missing columns in current dataset. Number of columns in current dataset: 12, Number of columns in baseline constraints: 13"),
        (_add_status, "Status", "extra_column_check", "There are extra columns in current dataset. Number of columns in current dataset: 14, Number of columns in baseline constraints: 13"),
        (_text_in_age, "Age", "data_type_check", "Data type match requirement is not met. Expected data type: Integral, Expected match: 100.0%. Observed: Only 89.9"),
        (_fractional_seniority, "Seniority", "data_type_check", "Data type match requirement is not met. Expected data type: Integral, Expected match: 100.0%. Observed: Only 0.0% of data is Integral."),
        (_gaps_in_expenses, "Expenses", "completeness_check", "Data completeness requirement is not met. Expected completeness: 100.0%. Observed: Only 66.6"),
        (_new_home, "Home", "categorical_values_check", "Categorical values requirement is not met. Expected: 100.0% of values within the baseline domain. Observed: Only 94.9"),
    ],
)
def test_each_check_type_reports_its_violation(
    split_baseline: tuple[dict, dict, pd.DataFrame], mutate: Mutation, feature: str, check: str, wording: str
) -> None:
    # GIVEN the clean current half with one defect
    statistics, constraints, current = split_baseline
    # WHEN it is checked
    _, violations = check_data_quality(mutate(current), statistics, constraints)
    # THEN the matching check names the feature, worded like Model Monitor
    found = [v for v in violations["violations"] if v["constraint_check_type"] == check]
    assert [v["feature_name"] for v in found] == [feature]
    assert found[0]["description"].startswith(wording)


def test_new_category_is_listed_in_the_description(split_baseline: tuple[dict, dict, pd.DataFrame]) -> None:
    # GIVEN a current half where some homes are "boat", unseen in the baseline
    statistics, constraints, current = split_baseline
    # WHEN checked
    _, violations = check_data_quality(_new_home(current), statistics, constraints)
    # THEN the categorical values violation shows the new value
    (violation,) = [v for v in violations["violations"] if v["constraint_check_type"] == "categorical_values_check"]
    assert "'boat'" in violation["description"]


def test_chi_squared_method_flags_a_changed_category_mix(split_baseline: tuple[dict, dict, pd.DataFrame]) -> None:
    # GIVEN Home compared with chi-squared (p-value threshold 0.1) and a current half where 40% of renters own
    statistics, constraints, current = split_baseline
    chi = copy.deepcopy(constraints)
    home = next(f for f in chi["features"] if f["name"] == "Home")
    home["monitoringConfigOverrides"] = {"categorical_drift_method": "ChiSquared"}
    moved = current.copy()
    renters = moved.index[moved["Home"] == "rent"]
    moved.loc[renters[: int(0.4 * len(renters))], "Home"] = "owner"
    # WHEN checked
    result = run_data_quality(moved, statistics, chi)
    # THEN Home drifts by chi-squared and the report carries the p-value
    entry = next(f for f in result.drift_report["features"] if f["name"] == "Home")
    assert entry["drift_method"] == "ChiSquared" and entry["chi_squared_p_value"] < 1e-6
    assert "Home" in _drift_violations(result.violations)


def test_disabled_feature_is_not_evaluated(credit_data: pd.DataFrame) -> None:
    # GIVEN Income drifted but its constraints disabled by an SDK-spelled override
    reference, current = _split(credit_data, seed=5)
    statistics, constraints = build_baseline(reference, numeric=NUMERIC, categorical=CATEGORICAL)
    next(f for f in constraints["features"] if f["name"] == "Income")["monitoring_config_overrides"] = {
        "evaluate_constraints": "Disabled"
    }
    current["Income"] = current["Income"] * 2.5
    # WHEN checked
    _, violations = check_data_quality(current, statistics, constraints)
    # THEN no violation names Income
    assert all(v["feature_name"] != "Income" for v in violations["violations"])


def test_current_statistics_document_gives_the_same_drift_verdicts(credit_data: pd.DataFrame) -> None:
    # GIVEN a drifted current half, checked once as rows and once as its own statistics.json
    reference, current = _split(credit_data, seed=9)
    statistics, constraints = build_baseline(reference, numeric=NUMERIC, categorical=CATEGORICAL)
    current["Assets"] = current["Assets"] * 3
    current_statistics = compute_statistics(current)
    # WHEN both are checked
    _, from_rows = check_data_quality(current, statistics, constraints)
    _, from_document = check_data_quality(current_statistics, statistics, constraints)
    # THEN they agree on the drifted features
    assert _drift_violations(from_rows) == _drift_violations(from_document) == {"Assets"}


def test_outputs_load_in_the_documented_shapes(split_baseline: tuple[dict, dict, pd.DataFrame], tmp_path: Path) -> None:
    # GIVEN a drifted current half
    statistics, constraints, current = split_baseline
    drifted = current.assign(Debt=current["Debt"] + 5000)
    # WHEN the results are written and read back with json.load
    result = run_data_quality(drifted, statistics, constraints)
    for name, document in (("s", result.statistics), ("v", result.violations), ("d", result.drift_report)):
        write_json(tmp_path / f"{name}.json", document)
    with open(tmp_path / "v.json") as v, open(tmp_path / "d.json") as d, open(tmp_path / "s.json") as s:
        violations, report, current_statistics = json.load(v), json.load(d), json.load(s)
    # THEN violations have exactly Model Monitor's three fields
    assert violations["violations"]
    assert all(set(v) == {"feature_name", "constraint_check_type", "description"} for v in violations["violations"])
    # AND the drift report gives, per feature, L-infinity, Robust distance, PSI and the verdict
    assert [f["name"] for f in report["features"]] == FEATURES
    for entry in report["features"]:
        assert {"l_infinity", "robust_distance", "psi", "flagged"} <= set(entry)
    assert report["flagged_features"] == ["Debt"]
    # AND the current statistics describe the current rows
    assert current_statistics["dataset"]["item_count"] == len(drifted)
