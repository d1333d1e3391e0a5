"""What ships with the Lambda layer and the serving source dir stays in step with the project's pins."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO_ROOT


# Lambda's python3.11 runtime (Amazon Linux 2, glibc 2.26) needs manylinux2014 wheels: the newest such releases.
LAMBDA_PINS = {"numpy": "2.2.6", "scipy": "1.16.2"}


def _pins(path: str) -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / path).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower()] = version
    return pins


@pytest.mark.parametrize("requirements", ["src/requirements.txt", "ml/requirements.txt"])
def test_shipped_requirements_use_the_same_pins_as_pyproject_or_the_lambda_platform_pins(requirements):
    pins = dict(re.findall(r'"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^"]+)"', (REPO_ROOT / "pyproject.toml").read_text()))
    lowered = {name.lower(): version for name, version in pins.items()}
    allowed = LAMBDA_PINS if requirements.startswith("src/") else {}
    for name, version in _pins(requirements).items():
        expected = allowed.get(name, lowered.get(name))
        assert expected == version, f"{requirements} pins {name}=={version}; expected {name}=={expected}"
