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


# The modules that take a minute or more (measured: `--durations` of `make test`) are collected first, so that with
# `-n 3 --dist loadfile` each starts at the beginning rather than near the end, where it would be the run's tail.
LONG_MODULES = ("tests/functional/test_demo.py", "tests/functional/test_console_browser.py",
                "tests/functional/test_ab_test_pipeline.py", "tests/functional/test_local_cloud.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    first = {module: rank for rank, module in enumerate(LONG_MODULES)}
    items.sort(key=lambda item: first.get(item.nodeid.split("::")[0], len(first)))  # stable: the rest keep their order
