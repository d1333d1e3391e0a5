"""statistics.json and constraints.json from the real credit data, in Model Monitor's documented shapes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sagestep.monitoring.baseline import build_baseline
from sagestep.monitoring.constraints import ConstraintsError, feature_config, suggest_constraints
from sagestep.monitoring.files import write_json
from sagestep.monitoring.statistics import compute_statistics, feature_types_from_config

NUMERIC = ["Seniority", "Time", "Age", "Expenses", "Income", "Assets", "Debt", "Amount", "Price"]
CATEGORICAL = ["Home", "Marital", "Records", "Job"]
EXPECTED_MONITORING_CONFIG = {
    "evaluate_constraints": "Enabled",
    "emit_metrics": "Enabled",
    "datatype_check_threshold": 1.0,
    "domain_content_threshold": 1.0,
    "distribution_constraints": {
        "perform_comparison": "Enabled",
        "comparison_threshold": 0.1,
        "comparison_method": "Robust",
        "categorical_comparison_threshold": 0.1,
        "categorical_drift_method": "LInfinity",
    },
}


@pytest.fixture(scope="module")
def baseline_files(credit_data: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    statistics, constraints = build_baseline(credit_data, numeric=NUMERIC, categorical=CATEGORICAL)
    out = tmp_path_factory.mktemp("baseline")
    write_json(out / "statistics.json", statistics)
    write_json(out / "constraints.json", constraints, indent=2)
    with open(out / "statistics.json") as s, open(out / "constraints.json") as c:
        return json.load(s), json.load(c)


def test_statistics_load_in_the_documented_shape(baseline_files: tuple[dict, dict], credit_data: pd.DataFrame) -> None:
    # GIVEN statistics.json written for the credit features and read back with json.load
    statistics, _ = baseline_files
    # THEN the header and the feature order follow the dataset config
    assert statistics["version"] == 0.0
    assert statistics["dataset"] == {"item_count": 4454}
    assert [f["name"] for f in statistics["features"]] == NUMERIC + CATEGORICAL
    for feature in statistics["features"]:
        assert feature["inferred_type"] in ("Integral", "Fractional", "String", "Unknown")
    # AND numeric features carry common counts, moments, 10 equal-width float buckets and a Deequ sketch
    income = next(f for f in statistics["features"] if f["name"] == "Income")["numerical_statistics"]
    assert income["common"] == {"num_present": 4073, "num_missing": 381}
    assert set(income) == {"common", "mean", "sum", "std_dev", "min", "max", "distribution"}
    assert income["mean"] == pytest.approx(credit_data["Income"].mean())
    assert income["std_dev"] == pytest.approx(credit_data["Income"].std(ddof=0))
    buckets = income["distribution"]["kll"]["buckets"]
    assert len(buckets) == 10
    assert buckets[0]["lower_bound"] == income["min"] and buckets[-1]["upper_bound"] == income["max"]
    widths = [b["upper_bound"] - b["lower_bound"] for b in buckets]
    assert max(widths) == pytest.approx(min(widths))
    assert all(isinstance(b["count"], float) for b in buckets)
    assert sum(b["count"] for b in buckets) == pytest.approx(4073)
    sketch = income["distribution"]["kll"]["sketch"]
    assert sketch["parameters"] == {"c": 0.64, "k": 2048.0}
    assert sum(len(level) * 2**h for h, level in enumerate(sketch["data"])) == 4073
    # AND string features carry distinct counts and integer categorical buckets
    home = next(f for f in statistics["features"] if f["name"] == "Home")
    assert home["inferred_type"] == "String"
    strings = home["string_statistics"]
    assert strings["distinct_count"] == float(credit_data["Home"].nunique())
    counts = {b["value"]: b["count"] for b in strings["distribution"]["categorical"]["buckets"]}
    assert counts == credit_data["Home"].value_counts().to_dict()


def test_exact_bucket_counts_for_data_smaller_than_the_sketch(credit_data: pd.DataFrame) -> None:
    # GIVEN 1,500 real ages (fewer than a compactor holds, so the sketch is exact)
    ages = credit_data[["Age"]].head(1500)
    # WHEN statistics are computed
    feature = compute_statistics(ages)["features"][0]["numerical_statistics"]
    # THEN the buckets equal numpy's histogram over [min, max]
    expected, _ = np.histogram(ages["Age"], bins=10, range=(ages["Age"].min(), ages["Age"].max()))
    assert [b["count"] for b in feature["distribution"]["kll"]["buckets"]] == [float(c) for c in expected]


def test_constraints_load_in_the_documented_shape(baseline_files: tuple[dict, dict], credit_data: pd.DataFrame) -> None:
    # GIVEN constraints.json suggested from the credit statistics and read back with json.load
    _, constraints = baseline_files
    by_name = {f["name"]: f for f in constraints["features"]}
    # THEN the monitoring config is Model Monitor's with Robust L-infinity drift
    assert constraints["version"] == 0.0
    assert constraints["monitoring_config"] == EXPECTED_MONITORING_CONFIG
    # AND complete columns must stay complete; Income keeps the lower 95% bound of its completeness
    assert by_name["Age"]["completeness"] == 1.0
    p = 4073 / 4454
    assert by_name["Income"]["completeness"] == pytest.approx(np.floor((p - 1.96 * np.sqrt(p * (1 - p) / 4454)) * 100) / 100)
    # AND numbers that were never negative must stay so; categories get their observed domain
    assert by_name["Amount"]["num_constraints"] == {"is_non_negative": True}
    assert by_name["Marital"]["string_constraints"]["domains"] == sorted(credit_data["Marital"].dropna().unique())
    assert by_name["Home"]["inferred_type"] == "String" and by_name["Price"]["inferred_type"] == "Integral"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1.0, 2.0, np.nan], "Integral"),
        ([1.5, 2.0, 3.0], "Fractional"),
        (["a", "1", None], "String"),
        ([np.nan, np.nan, np.nan], "Unknown"),
    ],
)
def test_inferred_type_follows_the_values(values: list, expected: str) -> None:
    # GIVEN a column of these values
    frame = pd.DataFrame({"x": values})
    # WHEN its statistics are computed without a declared type
    feature = compute_statistics(frame)["features"][0]
    # THEN its type is inferred as Deequ would
    assert feature["inferred_type"] == expected


def test_declared_categorical_numbers_are_profiled_as_strings(credit_data: pd.DataFrame) -> None:
    # GIVEN Time (months, numbers) declared categorical
    types = feature_types_from_config(["Age"], ["Time"])
    # WHEN profiled
    statistics = compute_statistics(credit_data[["Age", "Time"]], types)
    time = statistics["features"][1]
    # THEN it gets string statistics whose values are the months as written
    assert time["inferred_type"] == "String"
    values = {b["value"] for b in time["string_statistics"]["distribution"]["categorical"]["buckets"]}
    assert values == {str(v) for v in credit_data["Time"].unique()}


@pytest.mark.parametrize("key", ["monitoringConfigOverrides", "monitoring_config_overrides"])
def test_feature_overrides_are_read_in_both_spellings(baseline_files: tuple[dict, dict], key: str) -> None:
    # GIVEN constraints where Income overrides the drift settings (flat) and Age disables its checks (nested)
    _, constraints = baseline_files
    constraints = json.loads(json.dumps(constraints))
    features = {f["name"]: f for f in constraints["features"]}
    features["Income"][key] = {"comparison_threshold": 0.3, "comparison_method": "Simple"}
    features["Age"][key] = {"evaluate_constraints": "Disabled", "distribution_constraints": {"perform_comparison": "Disabled"}}
    # WHEN the effective configs are read
    income, age, debt = (feature_config(constraints, features[n]) for n in ("Income", "Age", "Debt"))
    # THEN the overrides apply to their feature only
    assert (income.comparison_threshold, income.comparison_method) == (0.3, "Simple")
    assert not age.evaluate_constraints and not age.perform_comparison
    assert (debt.comparison_threshold, debt.comparison_method, debt.evaluate_constraints) == (0.1, "Robust", True)


def test_bad_override_names_the_feature_field_and_fix(baseline_files: tuple[dict, dict]) -> None:
    # GIVEN an override with an unknown comparison method
    _, constraints = baseline_files
    feature = {"name": "Income", "monitoring_config_overrides": {"comparison_method": "Fancy"}}
    # WHEN it is read
    with pytest.raises(ConstraintsError) as error:
        feature_config(constraints, feature, source="baseline/constraints.json")
    # THEN the message names the file, the feature, the field and the valid values
    message = str(error.value)
    assert "baseline/constraints.json" in message and "'Income'" in message
    assert "comparison_method" in message and "Simple, Robust" in message


def test_suggested_constraints_cover_every_feature_in_order(credit_data: pd.DataFrame) -> None:
    # GIVEN statistics over all 15 columns of the raw file (no dataset config)
    statistics = compute_statistics(credit_data)
    # WHEN constraints are suggested
    constraints = suggest_constraints(statistics)
    # THEN every column has an entry with its type and completeness, in file order
    assert [f["name"] for f in constraints["features"]] == list(credit_data.columns)
    assert all("completeness" in f and "inferred_type" in f for f in constraints["features"])
