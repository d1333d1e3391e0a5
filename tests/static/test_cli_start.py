"""The command line starts without the heavy libraries: they are imported by the commands that use them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

HEAVY = ("pandas", "numpy", "scipy", "moto", "matplotlib", "lightgbm", "xgboost", "sklearn", "boto3", "botocore")
HELP_COMMANDS = [[], ["local"], ["local", "run"], ["models"], ["demo"], ["baseline"], ["monitor"],
                 ["monitor", "bias"], ["merge-ground-truth"], ["ab", "simulate"], ["ab", "compare"], ["validate"]]


def _imported_modules(args: list[str]) -> set[str]:
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "sagestep", *args, "--help"], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=True)
    return {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize("args", HELP_COMMANDS, ids=lambda a: " ".join(a) or "sagestep")
def test_help_imports_no_heavy_library(args):
    # GIVEN the command line; WHEN a --help is asked for
    modules = _imported_modules(args)
    # THEN no heavy library was imported to answer it
    assert not sorted(m for m in modules if m.split(".")[0] in HEAVY)
