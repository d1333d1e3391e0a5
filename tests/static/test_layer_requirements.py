"""The Lambda layer's requirements stay in step with the project's pins."""

from __future__ import annotations

import re

from tests.conftest import REPO_ROOT


def test_layer_requirements_use_the_same_pins_as_pyproject():
    pins = dict(re.findall(r'"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^"]+)"', (REPO_ROOT / "pyproject.toml").read_text()))
    lowered = {name.lower(): version for name, version in pins.items()}
    for line in (REPO_ROOT / "src" / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            assert lowered.get(name.lower()) == version, f"src/requirements.txt pins {line}; pyproject.toml pins {name}=={lowered.get(name.lower())}"
