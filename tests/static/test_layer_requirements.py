"""What ships with the Lambda layer and the serving source dir stays in step with the project's pins."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO_ROOT


@pytest.mark.parametrize("requirements", ["src/requirements.txt", "ml/requirements.txt"])
def test_shipped_requirements_use_the_same_pins_as_pyproject(requirements):
    pins = dict(re.findall(r'"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^"]+)"', (REPO_ROOT / "pyproject.toml").read_text()))
    lowered = {name.lower(): version for name, version in pins.items()}
    for line in (REPO_ROOT / requirements).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            assert lowered.get(name.lower()) == version, f"{requirements} pins {line}; pyproject.toml pins {name}=={lowered.get(name.lower())}"
