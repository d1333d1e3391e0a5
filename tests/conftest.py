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
