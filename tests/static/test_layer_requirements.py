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
        if line.strip() and not line.startswith(("#", "--")):
            name, version = line.split("==")
            pins[name.lower()] = version
    return pins


# ml/requirements.txt is installed in the serving image (tools/images/): what the image has keeps the image's version;
# a dependency the image lacks (narwhals, for lightgbm) is pinned at the version the project's environment resolved.
SERVING_IMAGE = "tools/images/sagemaker-xgboost-3.0-5.txt"


@pytest.mark.parametrize("requirements", ["src/requirements.txt", "ml/requirements.txt"])
def test_shipped_requirements_use_the_same_pins_as_pyproject_or_the_lambda_platform_pins(requirements):
    pins = dict(re.findall(r'"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^"]+)"', (REPO_ROOT / "pyproject.toml").read_text()))
    lowered = {name.lower(): version for name, version in pins.items()}
    allowed = LAMBDA_PINS if requirements.startswith("src/") else _pins(SERVING_IMAGE)
    for name, version in _pins(requirements).items():
        if name not in allowed and name not in lowered:
            from importlib.metadata import version as installed

            lowered[name] = installed(name)
        expected = allowed.get(name, lowered.get(name))
        assert expected == version, f"{requirements} pins {name}=={version}; expected {name}=={expected}"
