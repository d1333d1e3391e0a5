"""Shared fixtures. Tiers: tests/unit (no network, enforced), tests/functional (local runtime), tests/static."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def credit_data() -> pd.DataFrame:
    """The real modeldata credit_data set (4454 rows), as bundled in data/."""
    return pd.read_csv(REPO_ROOT / "data" / "credit_data" / "credit_data.csv")


@pytest.fixture(scope="session")
def german_credit() -> pd.DataFrame:
    return pd.read_csv(REPO_ROOT / "data" / "german_credit" / "german_credit.csv")


def load_event(name: str) -> dict:
    """Read a sample event stored once in events/ (also used by `sam local invoke -e`)."""
    return json.loads((REPO_ROOT / "events" / f"{name}.json").read_text())


# The template's rules that start executions by themselves (deploy on approval, train on new data), off for tests that
# drive the lifecycle by hand: with them on, an approval in such a test would also start a deployment of its own.
# tests/functional/test_autopilot.py covers the rules.
BY_HAND = {"DeployOnApprovalState": "DISABLED", "RetrainOnNewDataState": "DISABLED"}


# The modules that take 40 s or more under `make test` (measured: module wall times of a `-n 3` run, longest first) are
# collected first, longest first, and `make test` keeps that order (`--no-loadscope-reorder`; by default xdist hands
# out the modules with the most tests first, which started these near the end, where one is the run's tail).
LONG_MODULES = ("tests/functional/test_demo.py", "tests/functional/test_local_cloud.py",
                "tests/functional/test_ab_test_pipeline.py", "tests/functional/test_console_browser.py",
                "tests/functional/test_monitoring_pipeline.py", "tests/static/test_validate_command.py",
                "tests/functional/test_cli_local.py", "tests/static/test_validate_mutations.py",
                "tests/functional/test_asl_evaluation_agreement.py", "tests/functional/test_autopilot.py",
                "tests/reliability/test_cli_cloud.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    missing = [module for module in LONG_MODULES if not (REPO_ROOT / module).is_file()]
    if missing:
        raise pytest.UsageError(f"tests/conftest.py LONG_MODULES names modules that do not exist: {missing}")
    first = {module: rank for rank, module in enumerate(LONG_MODULES)}
    items.sort(key=lambda item: first.get(item.nodeid.split("::")[0], len(first)))  # stable: the rest keep their order
