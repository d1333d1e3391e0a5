"""Environment variables of Lambda functions: read once, fail fast with a clear message when one is missing."""

from __future__ import annotations

import os


class MissingSetting(RuntimeError):
    pass


def required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise MissingSetting(
            f"environment variable {name} is not set; it is defined for this function in template.yaml "
            f"(Environment.Variables) — deploy with the template or set it for a local run"
        )
    return value
