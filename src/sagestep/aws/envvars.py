"""Environment variables of Lambda functions: read once, fail fast with a clear message when one is missing."""

from __future__ import annotations

import math
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


class InvalidSetting(RuntimeError):
    pass


def required_number(name: str, *, minimum: float = 0.0) -> float:
    """A required environment variable holding a number of at least `minimum`."""
    value = required(name)
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number < minimum:
        raise InvalidSetting(f"environment variable {name}={value!r} must be a number >= {minimum:g}; fix it in "
                             f"template.yaml (Environment.Variables) or for a local run")
    return number


def optional_int(name: str, default: int, *, minimum: int = 1, maximum: int | None = None) -> int:
    """An optional integer environment variable; unset or empty means `default` (document it where it is read)."""
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    try:
        number = int(value.strip())
    except ValueError:
        number = minimum - 1
    if number < minimum or (maximum is not None and number > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise InvalidSetting(f"environment variable {name}={value!r} must be an integer {bounds} "
                             f"(or unset for {default})")
    return number
