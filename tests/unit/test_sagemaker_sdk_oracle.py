"""The SageMaker Python SDK (sagemaker-core, pinned in the dev extra) as an oracle: existing tooling reads what
sagestep writes, and its image configuration gives the image URIs of any region (offline, no AWS call)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sagemaker.core.model_monitor.monitoring_files import ConstraintViolations, Constraints, Statistics

from sagestep.cli import images
from sagestep.monitoring.baseline import build_baseline
from sagestep.monitoring.data_quality import run_data_quality
from tests.conftest import REPO_ROOT

NUMERIC = ["Seniority", "Time", "Age", "Expenses", "Income", "Assets", "Debt", "Amount", "Price"]
CATEGORICAL = ["Home", "Marital", "Records", "Job"]


@pytest.fixture(scope="module")
def reports(credit_data: pd.DataFrame):
    """statistics.json, constraints.json of a baseline half of the real rows; violations of the other half shifted."""
    shuffled = credit_data[NUMERIC + CATEGORICAL].sample(frac=1.0, random_state=5).reset_index(drop=True)
    reference, current = shuffled.iloc[: len(shuffled) // 2].copy(), shuffled.iloc[len(shuffled) // 2:].copy()
    statistics, constraints = build_baseline(reference, numeric=NUMERIC, categorical=CATEGORICAL)
    current["Income"] = (current["Income"] + 0.5 * current["Income"].std()).round()
    violations = run_data_quality(current, statistics, constraints).violations
    # what crosses S3 is JSON text: load what the SDK would download
    return tuple(json.loads(json.dumps(doc)) for doc in (statistics, constraints, violations)) + (current,)


def test_sdk_reads_our_statistics_constraints_and_violations(reports):
    statistics, constraints, violations, _ = reports
    sdk_statistics = Statistics(statistics, None)
    sdk_constraints = Constraints(constraints, None)
    sdk_violations = ConstraintViolations(violations, None)
    assert {f["name"] for f in sdk_statistics.body_dict["features"]} == set(NUMERIC + CATEGORICAL)
    assert sdk_constraints.body_dict["monitoring_config"]["evaluate_constraints"] == "Enabled"
    assert {v["feature_name"] for v in sdk_violations.body_dict["violations"]} >= {"Income"}


def test_a_feature_switched_off_with_the_sdk_is_no_longer_checked_by_sagestep(reports):
    # GIVEN our constraints, edited the way a Model Monitor user does it: Constraints.set_monitoring(False, feature)
    statistics, constraints, _, current = reports
    sdk_constraints = Constraints(json.loads(json.dumps(constraints)), None)
    sdk_constraints.set_monitoring(False, feature_name="Income")
    # WHEN sagestep checks the same drifted data against the edited file
    violations = run_data_quality(current, statistics, sdk_constraints.body_dict).violations
    # THEN Income, the only drifted feature, raises nothing: the SDK's override is honoured
    assert "Income" not in {v["feature_name"] for v in violations["violations"]}


def test_template_image_defaults_are_the_sdk_images_of_us_east_1():
    defaults = images.template_defaults(REPO_ROOT / "template.yaml")
    assert {name: images.image_for(uri, "us-east-1") for name, uri in defaults.items()} == defaults


def test_images_of_another_region_come_from_the_sdk_configuration():
    defaults = images.template_defaults(REPO_ROOT / "template.yaml")
    assert images.image_for(defaults["JobImageUri"], "eu-west-1") == \
        "819792524951.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-distribution-prod:3.2.0-cpu"
    assert images.image_for(defaults["InferenceImageUri"], "eu-west-1") == \
        "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.0-5"
